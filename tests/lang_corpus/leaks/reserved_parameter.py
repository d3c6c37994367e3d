# expect: 'data' is a reserved name
# at: 3:7
def f(data):
    return mean(data.age)


m = f(1)
