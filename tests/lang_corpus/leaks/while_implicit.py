# expect: while condition is private
# at: 8:7
done = False
if mean(data.age) > 30:
    done = True
else:
    done = False
while not done:
    done = True
