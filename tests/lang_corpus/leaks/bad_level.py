# expect: 'fmale' is not a level of this category
# at: 4:11
n = 0
w = count(data.sex == "fmale")
