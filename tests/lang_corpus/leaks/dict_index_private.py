# expect: private value used as a dict key
# at: 5:3
d = {"a": 1, "b": 2}
k = count(data.ui) % 2
d[k] = 3
