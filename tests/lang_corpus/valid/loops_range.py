"""Moments of age by a for loop over a public range."""
moments = [0.0] * 4
centred = data.age - mean(data.age)
power = 1 + 0 * centred
for k in range(1, 5):
    power = power * centred
    moments[k - 1] = mean(power)
skew = moments[2] / moments[1] ** 1
reveal(moments, "central moments 1..4")
reveal(skew, "skew (unnormalised)")
