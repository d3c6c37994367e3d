# expect: if on a private condition cannot be made oblivious
# at: 4:4
avg = mean(data.age)
if avg > 40:
    print("older")
