# expect: raise is not part of the language
# at: 5:5
n = len(data)
if n < 10:
    raise ValueError(mean(data.age))
