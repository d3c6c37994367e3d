# expect: recursion is not allowed (ping -> pong -> ping)
# at: 8:12
def ping(n):
    return pong(n)


def pong(n):
    return ping(n)


y = ping(3)
