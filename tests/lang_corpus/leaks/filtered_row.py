# expect: rows of a filtered column cannot be addressed
# at: 4:9
applied = where(data.age, data.ui)
first = applied[0]
