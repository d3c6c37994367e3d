"""A regression table: rr ~ 1 + age + tenure + stateur on data/benefits.csv, as statsmodels.

`ols` returns [coefficients (k), standard errors (k), R^2, adjusted R^2, condition],
k = 4 here (intercept first), each with its own error bound. The bounds assume that the
features are not nearly collinear; the condition tells: they hold when it is at most
`regression.condition_limit(3, 0.0, 1e-3)` (0.99998), as on this data (0.05). The t
statistics and two-sided p-values are public functions of what is revealed, so the owner
computes them: the result's detail is statsmodels' table (coef, se, t, p per term, R^2,
adjusted R^2), each with a bound against the fit on the CSV's own values that the owner
derives from the revealed fit itself (`regression.ols_table`): stateur is fixed point, and
its storage rounding (errors in the variables) is bounded at the data's own eigenvalues
and residual, not at the worst case the engine states (docs/analytics.md, "Linear
regression": 6.0e-5 at most here, against 3.1e-3 for the engine's).

    enigma check examples/ols.py
    enigma script run examples/ols.py --schema examples/benefits.yaml --data data/benefits.csv

Tolerance: every revealed value within its stated error bound of statsmodels' OLS on the
same (encoded) rows, and every bound of the owner's table of statsmodels' OLS on the CSV's
values, within 100 times the real error (tests/test_lang_examples.py).
"""
# schema: benefits.yaml

fit = ols(data.rr, [data.age, data.tenure, data.stateur])
reveal(fit, "ols")
