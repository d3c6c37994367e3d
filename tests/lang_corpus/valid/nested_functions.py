"""Functions calling functions; tuple returns; public parameters as loop bounds."""
def moment(x, k: public):
    c = x - mean(x)
    p = c
    for _ in range(k - 1):
        p = p * c
    return mean(p)


def shape_of(x):
    v = moment(x, 2)
    return moment(x, 3) / v ** 1, moment(x, 4) / (v * v)


skew_raw, kurt = shape_of(data.age)
reveal((skew_raw, kurt), "skew-ish and kurtosis of age")
