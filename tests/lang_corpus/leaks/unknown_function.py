# expect: unknown function 'meen'; did you mean mean
# at: 4:7
x = 1
avg = meen(data.age)
