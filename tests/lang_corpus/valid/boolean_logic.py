"""and, or, not, chained comparisons, on private and public values."""
prime_age = 25 <= data.age < 55
family = data.married or data.dkids
neither = not (data.nwhite or data.sex == "female")
n = len(data)
big = n > 100 and not n > 10000000
reveal(count(prime_age and family), "prime-age with family")
reveal(count(neither), "neither")
reveal(big, "big table")
