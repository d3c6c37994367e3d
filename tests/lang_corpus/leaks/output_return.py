# expect: return outside a function
# at: 5:1
avg = mean(data.age)
print("done")
return avg
