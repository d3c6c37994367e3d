# expect: a private condition chooses between values, not between containers or texts
# at: 4:8
name = "a"
name = "age" if mean(data.age) > 40 else "tenure"
print(name)
