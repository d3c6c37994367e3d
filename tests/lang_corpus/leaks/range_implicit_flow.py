# expect: range() bound is private
# at: 8:16
k = 0
if max(data.tenure) > 30:
    k = 5
else:
    k = 3
for i in range(k):
    pass
