# expect: f is declared to return public but returns a private value
# at: 4:5
def f(x) -> public:
    return mean(x)


y = f(data.age)
