# expect: range() bound is private
# at: 5:16
n = count(data.ui)
acc = 0
for i in range(n):
    acc = acc + i
