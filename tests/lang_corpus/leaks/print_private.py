# expect: print() of a private value
# at: 4:19
avg = mean(data.age)
print("average:", avg)
