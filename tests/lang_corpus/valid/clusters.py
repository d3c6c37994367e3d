"""k-means on standardised age, tenure and replacement rate."""
def standardise(x):
    return (x - mean(x)) / std(x)


features = [standardise(data.age), standardise(data.tenure), standardise(data.rr)]
centers = kmeans(features, k=4, iters=15)
reveal(centers, "cluster centres (standard units)")
