"""Histogram of ages: ten equal bins from the schema's range, and decades by explicit edges."""
equal = histogram(data.age, bins=10)
decades = histogram(data.age, bins=[20, 30, 40, 50, 60, 70])
by_reason = histogram(data.joblost)
reveal(equal, "ages, 10 bins")
reveal(decades, "ages by decade")
reveal(by_reason, "reason for job loss")
