# expect: 'd' is a dict whose keys would depend on the condition
# at: 4:4
d = {"a": 1}
if count(data.ui) > 100:
    d = {"a": 1, "b": 2}
print(len(d))
