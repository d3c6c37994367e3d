# expect: 'c' is a text, and texts are public
# at: 4:4
c = "age"
if mean(data.rr) > 0.5:
    c = "tenure"
m = mean(data[c])
print(c)
