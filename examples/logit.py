"""Unemployment-insurance take-up: ui ~ 1 + age + tenure + stateur on data/benefits.csv,
a logistic regression as statsmodels' `sm.Logit(y, X).fit()`.

`logit` runs a fixed number of damped Newton steps in MPC (7 by default, from 0) and
reveals [b (k), gradient (k), Hessian (k (k + 1) / 2), llf, count(y), n], k = 4 here
(intercept first): the point b exactly, and what certifies it, the gradient and the
Hessian of the log-likelihood at b (standardised by the schema's ranges), each with its
error bound. The owner turns this into the table, with bounds against statsmodels'
converged MLE on the data as written, or is told that nothing is certified (separable
data: no MLE):

    from enigma.lang.analytics.logistic import logit_table
    table = logit_table(result.value, result.error, ranges, True, storage)
    table.params, table.bse, table.tvalues, table.pvalues, table.llf, table.prsquared
    # and each one's *_error; ranges: age [20, 70], tenure [0, 50], stateur [0, 20];
    # storage [0, 0, 2^-17] (stateur is a fixed column, rounded to 2^-16 when shared)

    enigma check examples/logit.py
    enigma script run examples/logit.py --schema examples/benefits.yaml --data data/benefits.csv

Tolerance: every value of the table within its stated bound of statsmodels
(tests/test_lang_logit.py).
"""
# schema: benefits.yaml

fit = logit(data.ui, [data.age, data.tenure, data.stateur])
reveal(fit, "logit")
