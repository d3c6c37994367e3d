# expect: reveal() inside a function
# at: 4:5
def report(x):
    reveal(mean(x), "m")
    return 0


r = report(data.age)
