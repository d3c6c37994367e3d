# expect: print() of a private value
# at: 12:7
# the same through a while loop's break (found by tests/test_lang_noninterference.py).
x = 1
w = 0
while w < 3:
    w += 1
    x = mean(data.age)
    if w == 1:
        break
    x = 2
print(x)
