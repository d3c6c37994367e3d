"""break and continue under public conditions."""
acc = 0.0
for i in range(10):
    if i % 2 == 1:
        continue
    if i > 6:
        break
    acc = acc + mean(data.rr) * i
reveal(acc, "acc")
