"""Average age of the displaced workers, and how many are over 50."""
avg = mean(data.age)
older = count(data.age > 50)
reveal(avg, "average age")
reveal(older, "over 50")
reveal(len(data), "people")
