# expect: open() is not allowed
# at: 4:1
avg = mean(data.age)
open("out.txt", "w")
