# expect: assert message contains a private value
# at: 4:15
n = len(data)
assert n > 0, mean(data.age)
