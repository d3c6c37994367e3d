"""Lists, tuples and dicts with public structure: indexing, slicing, unpacking, repetition."""
pair = (mean(data.age), mean(data.tenure))
age_mean, tenure_mean = pair
stats = [min(data.age), max(data.age), median(data.age)]
first_two = stats[:2]
zeros = [0] * 3
zeros[1] = count(data.ui)
table = {"age": age_mean, "tenure": tenure_mean, 3: len(data)}
last = stats[-1]
reveal(first_two, "min and max age")
reveal(zeros, "zeros but one")
reveal(table["age"] + table["tenure"] + last, "sum of things")
reveal(len(stats), "stat count")
