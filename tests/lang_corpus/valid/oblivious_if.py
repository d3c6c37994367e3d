"""An if on private data becomes an oblivious selection (a Select node)."""
avg = mean(data.rr)
bonus = 0
if avg > 0.5:
    bonus = 1
elif avg > 0.3:
    bonus = 2
else:
    bonus = 3
if data.age < 30:
    band = 0
    weight = 1.0
else:
    band = 1
    weight = 0.5
    if data.tenure > 10:
        weight = 0.25
reveal(bonus, "bonus")
reveal(sum(band), "older")
reveal(sum(weight * data.rr), "weighted rr")
