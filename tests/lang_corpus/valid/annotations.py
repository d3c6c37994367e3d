"""Annotations: private raises a value, public is kept public; unannotated labels follow values."""
threshold: private = 40
bins: public = 8
k: public = bins * 2
x = 1
x = x + mean(data.age)
over = count(data.age > threshold)
h = histogram(data.age, bins=bins)
reveal(over, "over the private threshold")
reveal(h, "ages")
reveal(x, "x")
reveal(k, "k")
