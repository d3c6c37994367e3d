"""Public conditions choose what to compute; only the chosen branch runs."""
n = len(data)
if n > 1000:
    cut = 50
elif n > 100:
    cut = 40
else:
    cut = 30
older = count(data.age > cut)
if data.rows >= 2:
    spread = std(data.tenure)
else:
    spread = 0.0
reveal(older, "older than the cut")
reveal(spread, "tenure spread")
