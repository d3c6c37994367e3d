"""Loop over a public list of column names; collect results in a dict."""
means = {}
for name in ["age", "tenure", "statemb"]:
    means[name] = mean(data[name])
reveal(means, "means")
