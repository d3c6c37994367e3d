# expect: private value used as a list length
# at: 4:17
n = count(data.dkids)
zeros = [0.0] * n
