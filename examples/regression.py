"""Least squares of the replacement rate on age and job tenure (data/benefits.csv).

Reveals [intercept, slope for age, slope for tenure] of the fit rr ~ 1 + age + tenure,
solved inside the engine: ordinary least squares, as statsmodels' OLS, with no penalty
(pass ridge= to ask for one). The error bound of each coefficient holds when no linear
combination of the features, standardised by their public ranges, has a variance below
10^-3 (docs/analytics.md, "Linear regression").

    enigma check examples/regression.py
    enigma script run examples/regression.py \\
        --schema examples/benefits.yaml --data data/benefits.csv

Tolerance: each coefficient within its stated error bound of statsmodels' OLS on the
same (encoded) rows (tests/test_lang_examples.py).
"""
# schema: benefits.yaml

coef = linreg(data.rr, [data.age, data.tenure])
reveal(coef, "coefficients")
