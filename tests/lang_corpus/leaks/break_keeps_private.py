# expect: print() of a private value
# at: 11:7
# A break leaves the loop with x private, though the end of the body makes it public again
# (found by tests/test_lang_noninterference.py).
x = 1
for i in range(3):
    x = mean(data.age)
    if i == 0:
        break
    x = 1
print(x)
