"""t-tests on data/benefits.csv: Welch, Student, one-sample and paired, with p-values.

Do workers who claimed unemployment insurance have a different replacement rate
(Welch, then Student with a pooled variance)? Is the mean age 35? Do age and
tenure differ pair by pair (paired, row by row)? Each call reveals [t, df,
floored, mean difference, se] to the owner, who gets the p-value and the 95% interval of
the mean difference with it (scipy, on the owner's side), and t = diff / se with a bound
from theirs: on rr (fixed point in [0, 0.7]) t's worst case at the spread floor is about 12,
the owner's bound 3e-3 at 300 rows (docs/analytics.md, "Welch's t-test").

    enigma check examples/ttests.py
    enigma script run examples/ttests.py --schema examples/benefits.yaml --data data/benefits.csv

Tolerance: t within the owner's bound (3e-3 on rr, 5e-6 on age at 300 rows); df exact for Student,
one-sample and paired; scipy's ttest_ind, ttest_1samp and ttest_rel are the reference.
"""
# schema: benefits.yaml

claimed = where(data.rr, data.ui)
unclaimed = where(data.rr, not data.ui)
reveal(ttest(claimed, unclaimed), "rr_by_ui_welch")
reveal(ttest(claimed, unclaimed, equal_var=True), "rr_by_ui_student")
reveal(ttest_1samp(data.age, 35), "age_is_35")
reveal(ttest_rel(data.age, data.tenure), "age_vs_tenure")
