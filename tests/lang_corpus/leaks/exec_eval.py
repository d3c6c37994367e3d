# expect: eval() is not allowed
# at: 4:5
code = "mean(data.age)"
x = eval(code)
