# expect: reveal() inside a loop
# at: 4:5
for c in ["age", "tenure"]:
    reveal(mean(data[c]))
