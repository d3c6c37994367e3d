"""Outliers: rows whose replacement rate is more than two standard deviations out."""
z = (data.rr - mean(data.rr)) / std(data.rr)
outlier = (z > 2) or (z < -2)
reveal(count(outlier), "outliers")
reveal(mean(data.age, where=outlier), "mean age of outliers")
