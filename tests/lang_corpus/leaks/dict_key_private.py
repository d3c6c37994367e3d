# expect: private value used as a dict key
# at: 5:5
m = count(data.ui) % 2
d = {
    m: 1,
}
