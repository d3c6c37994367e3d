# expect: recursion is not allowed (fact -> fact)
# at: 7:20
def fact(n):
    if n <= 1:
        return 1
    else:
        return n * fact(n - 1)


x = fact(5)
