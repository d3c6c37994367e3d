"""Association in data/benefits.csv: Pearson correlation with its test, one-way ANOVA.

Does tenure rise with age (r, its p-value and a 95% interval)? Does the
replacement rate differ between the reasons for losing the job (one-way ANOVA:
eta^2 in MPC, F and its p-value on the owner's side)?

    enigma check examples/association.py
    enigma script run examples/association.py \\
        --schema examples/benefits.yaml --data data/benefits.csv

Tolerance: r within its bound (about 1e-4), eta^2 within its bound (about 1e-5),
df exact; scipy's pearsonr and f_oneway are the reference.
"""
# schema: benefits.yaml

reveal(pearsonr(data.age, data.tenure), "tenure_with_age")
reveal(anova(data.rr, data.joblost), "rr_by_reason")
