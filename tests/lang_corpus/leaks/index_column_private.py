# expect: private value used as an index
# at: 4:18
j = min(data.yrdispl)
first = data.age[j]
