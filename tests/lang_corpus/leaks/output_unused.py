# expect: the value of this expression is not used
# at: 4:1
avg = mean(data.age)
avg
