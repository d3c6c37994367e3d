"""Clustering displaced workers by their use of public services (data/benefits.csv).

k-means with k = 3 on age, job tenure, the unemployment-insurance replacement
rate and whether the worker claimed insurance. The last two are scaled to a
range like the first two' (rr in percent, ui as 0 or 50), so that all four
weigh alike in the distances. The first centroids lie on the diagonal of the
columns' public ranges: the start depends on the schema only, never on data.

    enigma check examples/clusters.py
    enigma script run examples/clusters.py --schema examples/benefits.yaml --data data/benefits.csv

Tolerance: the centroids match Lloyd's algorithm in float64 from the same start to
within their stated error bound (a few ulp), as long as no point is equidistant
(to 2^-16) from two centroids.
"""
# schema: benefits.yaml

features = [data.age, data.tenure, data.rr * 100, data.ui * 50]
centers = kmeans(features, k=3, iters=5)
reveal(centers, "centers")
