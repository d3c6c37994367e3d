# expect: range() bound is private
# at: 5:16
m = mean(data.age)
x = 2 if m > 40 else 3
for i in range(x):
    pass
