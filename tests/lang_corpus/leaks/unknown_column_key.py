# expect: no column 'wage' in schema 'benefits'
# at: 5:14
names = ["age", "wage"]
for name in names:
    m = mean(data[name])
