# expect: this integer is 9223372036854775808, which does not fit in 64 bits
# at: 6:4
# Folded with Python's integers, 2 ** 63 > 0 held here and not in the 64-bit run, so the
# checker typed the branch the run skips (found by tests/test_lang_noninterference.py).
y = mean(data.age)
if 2 ** 63 > 0:
    y = 1
print(y)
