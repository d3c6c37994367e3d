# expect: private value used as the number of clusters
# at: 4:39
k = count(data.ui) % 4 + 1
c = kmeans([data.age, data.tenure], k=k + 0, iters=k * 0 + 5)
