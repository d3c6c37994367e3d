"""Tests on counts in data/benefits.csv: independence, goodness of fit, proportions.

Is claiming unemployment insurance independent of sex (chi-square of the 2x2
table)? Are the four reasons for losing a job equally common (goodness of fit to
1/4 each)? What share claimed, and what share of the married claimed (with 95%
Wilson intervals)?

    enigma check examples/tables.py
    enigma script run examples/tables.py --schema examples/benefits.yaml --data data/benefits.csv

Tolerance: chi-square statistics within their bound (about 1e-4); counts exact;
scipy's chi2_contingency (no correction), chisquare and binomtest are the reference.
"""
# schema: benefits.yaml

reveal(chi2(data.ui, data.sex), "ui_by_sex")
reveal(chisquare(data.joblost, [0.25, 0.25, 0.25, 0.25]), "reasons_even")
reveal(proportion(data.ui), "claimed")
reveal(proportion(data.ui, where=data.married), "married_who_claimed")
