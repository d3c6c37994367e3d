# expect: private value used as a slice bound
# at: 5:11
h = histogram(data.age, bins=10)
k = count(data.ui) // 1000
top = h[0:k]
