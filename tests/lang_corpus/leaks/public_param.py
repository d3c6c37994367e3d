# expect: parameter 'k' of bins is declared public but receives a private value
# at: 7:20
def bins(x, k: public):
    return histogram(x, bins=10) * k


h = bins(data.age, count(data.ui))
