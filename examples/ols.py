"""A regression table: rr ~ 1 + age + tenure + stateur on data/benefits.csv, as statsmodels.

`ols` returns [coefficients (k), standard errors (k), R^2, adjusted R^2, condition],
k = 4 here (intercept first), each with its own error bound. The bounds assume that the
features are not nearly collinear; the condition tells: they hold when it is at most
`regression.condition_limit(3, 0.0, 1e-3)` (0.99998), as on this data (0.05). The t
statistics and two-sided
p-values are public functions of what is revealed, so the owner computes them
(`enigma.lang.analytics.regression.coefficient_table(coef, coef_err, se, se_err, n - k)`,
with bounds that follow from the revealed values).

    enigma check examples/ols.py
    enigma script run examples/ols.py --schema examples/benefits.yaml --data data/benefits.csv

Tolerance: every revealed value within its stated error bound of statsmodels' OLS on the
same (encoded) rows (tests/test_lang_examples.py).
"""
# schema: benefits.yaml

fit = ols(data.rr, [data.age, data.tenure, data.stateur])
reveal(fit, "ols")
