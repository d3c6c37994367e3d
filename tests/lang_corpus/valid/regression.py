"""Regression of the replacement rate on age and tenure, with the fit's R^2."""
coef = linreg(data.rr, [data.age, data.tenure])
b0, b1, b2 = coef[0], coef[1], coef[2]
fitted = b0 + b1 * data.age + b2 * data.tenure
residual = data.rr - fitted
r2 = 1 - variance(residual) / variance(data.rr)
reveal(coef, "intercept, age, tenure")
reveal(r2, "R^2")
