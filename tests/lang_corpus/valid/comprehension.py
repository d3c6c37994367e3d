"""List comprehensions over public lists and ranges."""
cols = ["age", "tenure", "rr"]
means = [mean(data[c]) for c in cols]
spreads = [std(data[c]) for c in cols]
cv = [spreads[i] / means[i] for i in range(len(cols))]
reveal(cv, "coefficients of variation")
