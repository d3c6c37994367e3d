# expect: if on a private condition cannot be made oblivious: line 5 is a return
# at: 4:8
def older(x):
    if mean(x) > 40:
        return 1
    return 0


r = older(data.age)
