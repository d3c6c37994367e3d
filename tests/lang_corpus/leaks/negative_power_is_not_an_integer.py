# expect: print() of a private value
# at: 8:7
# 2 ** -1 was typed as the integer constant 0, so the checker took the branch the run (0.5)
# skips (found by tests/test_lang_noninterference.py).
y = mean(data.age)
if 2 ** -1 == 0:
    y = 1
print(y)
