"""k-means on age, tenure and replacement rate, each scaled to [0, 1] by its public range."""
def unit(x, lo: public, hi: public):
    return (x - lo) / (hi - lo)


features = [unit(data.age, 20, 70), unit(data.tenure, 0, 50), unit(data.rr, 0, 0.7)]
centers = kmeans(features, k=4, iters=15)
reveal(centers, "cluster centres (unit scale)")
