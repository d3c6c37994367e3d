# expect: while condition is private
# at: 5:7
x = mean(data.rr)
steps = 0
while x < 1:
    x = x * 2
    steps = steps + 1
