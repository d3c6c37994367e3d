"""k-means on age, tenure and replacement rate: three groups of displaced workers."""
centers = kmeans([data.age, data.tenure, data.rr], k=3, iters=10)
sizes = histogram(data.joblost)
reveal(centers, "cluster centres (age, tenure, rr)")
reveal(sizes, "people by reason for job loss")
