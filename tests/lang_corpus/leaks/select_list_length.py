# expect: 'xs' is a list whose length would depend on the condition
# at: 4:4
xs = [1]
if mean(data.age) > 40:
    xs = [1, 2]
n = len(xs)
print(n)
