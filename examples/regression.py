"""Linear regression of the replacement rate on age and job tenure (data/benefits.csv).

Reveals [intercept, slope for age, slope for tenure] of the fit rr ~ 1 + age + tenure,
solved inside the engine. The library's regression adds a small ridge penalty
(1e-3 on features standardised by their public ranges): it is what makes a
worst-case error bound possible whatever the data (two collinear columns would
otherwise make the system singular); for features that are not nearly collinear
the coefficients are those of least squares.

    enigma check examples/regression.py
    enigma script run examples/regression.py --schema examples/benefits.yaml --data data/benefits.csv

Tolerance: each coefficient within its stated error bound of the same model in
float64 (scikit-learn's Ridge(alpha=1e-3 n) on x / half-width).
"""
# schema: benefits.yaml

coef = linreg(data.rr, [data.age, data.tenure])
reveal(coef, "coefficients")
