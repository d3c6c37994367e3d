# expect: function helper is defined but never called
# at: 3:1
def helper(x):
    print(x)
    return x


m = mean(data.age)
