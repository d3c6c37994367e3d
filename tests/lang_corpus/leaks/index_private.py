# expect: private value used as an index
# at: 5:8
xs = [1, 2, 3]
i = count(data.ui) % 3
y = xs[i]
