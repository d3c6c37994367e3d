# expect: range() bound is private
# at: 5:20
def repeat(x, n):
    acc = x
    for _ in range(n):
        acc = acc + x
    return acc


y = repeat(1, count(data.married))
