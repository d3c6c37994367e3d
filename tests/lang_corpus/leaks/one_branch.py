# expect: 'bonus' is assigned in only one branch of an if on a private condition
# at: 3:1
if mean(data.rr) > 0.5:
    bonus = 1
