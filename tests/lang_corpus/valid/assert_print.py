"""assert and print on public values only: every node sees them."""
n = len(data)
assert n > 0, "the table is empty"
print("rows:", n)
reveal(mean(data.age), "mean age")
