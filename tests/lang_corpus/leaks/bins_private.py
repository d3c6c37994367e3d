# expect: private value used as the number of bins
# at: 4:30
k = count(data.ui) // 500
h = histogram(data.age, bins=k)
