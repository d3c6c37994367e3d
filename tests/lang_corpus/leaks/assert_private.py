# expect: assert on a private condition
# at: 4:8
avg = mean(data.age)
assert avg > 18, "too young"
