"""A while loop on a public counter: bisection for the median age, with private tests."""
lo = 20.0
hi = 70.0
half = count(data) / 2
step = 0
while step < 12:
    mid = (lo + hi) / 2
    below = count(data.age <= mid)
    lo = where(below < half, mid, lo)
    hi = where(below < half, hi, mid)
    step += 1
reveal((lo + hi) / 2, "median age (bisection)")
