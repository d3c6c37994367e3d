# expect: print() of a private value
# at: 6:11
# continue carries x, private, to the next pass (found by tests/test_lang_noninterference.py).
x = 1
for i in range(3):
    print(x)
    x = mean(data.age)
    if i < 5:
        continue
    x = 1
