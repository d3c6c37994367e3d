# expect: print() of a private value
# at: 5:7
a = mean(data.age)
stats = [1.0, a]
print(stats)
