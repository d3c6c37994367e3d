# expect: a loop over the rows of a column is not allowed
# at: 4:10
total = 0
for x in data.age:
    total = total + x
