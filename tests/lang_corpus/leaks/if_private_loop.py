# expect: line 5 is a for loop
# at: 4:4
total = 0
if sum(data.ui) > 100:
    for i in range(3):
        total = total + i
