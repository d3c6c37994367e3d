"""Linear regression of the replacement rate on age and job tenure (data/benefits.csv).

Reveals [intercept, slope for age, slope for tenure] of the least-squares fit
rr ~ 1 + age + tenure, solved inside the engine (covariance matrix, then
Gaussian elimination with secret divisions, 20 fractional bits).

    enigma run examples/regression.py --schema examples/benefits.yaml --data data/benefits.csv

Tolerance: no worst-case bound exists without a public bound on how well-conditioned
the data is (the run reports the bound as inf); on this data the coefficients match
numpy's lstsq to 1e-4 (intercept) and 1e-5 (slopes).
"""

coef = linreg(data.rr, [data.age, data.tenure])
reveal(coef, "coefficients")
