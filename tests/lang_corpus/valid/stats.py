"""Descriptive statistics and association of two columns."""
results = {
    "variance": variance(data.tenure),
    "std": std(data.tenure),
    "median": median(data.tenure),
    "p90": percentile(data.tenure, 90),
    "min": min(data.tenure),
    "max": max(data.tenure),
    "cov": cov(data.age, data.tenure),
    "corr": corr(data.age, data.tenure),
}
reveal(results, "tenure")
