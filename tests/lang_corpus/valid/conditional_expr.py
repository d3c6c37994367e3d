"""Conditional expressions: public ones choose, private ones select."""
n = len(data)
label = 1 if n > 10 else 0
capped = 50 if mean(data.age) > 50 else mean(data.age)
per_row = data.tenure if data.tenure < 30 else 30
reveal(label + capped, "capped mean age plus one")
reveal(sum(per_row), "capped total tenure")
