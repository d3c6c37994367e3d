"""Functions: annotated and generic parameters, called with private and public values."""
def scaled(x: private, factor: public) -> private:
    return x * factor


def clamp(x, lo, hi):
    return min(max(x, lo), hi)


def share(mask):
    return count(mask) / len(data)


a = scaled(data.rr, 100)
b = clamp(data.age, 25, 60)
c = clamp(3, 0, 10)
for i in range(c):
    a = a + i
reveal(mean(a), "rr in percent plus")
reveal(mean(b), "clamped age")
reveal(share(data.married), "married share")
