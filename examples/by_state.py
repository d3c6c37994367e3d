"""Group-by statistics per state (data/benefits.csv): one result per level of `state`.

How many displaced workers each state has, how many of them claimed
unemployment insurance, and their mean replacement rate. The state of each
row stays private: the rows are counted through a secret one-hot matrix.

    enigma check examples/by_state.py
    enigma script run examples/by_state.py --schema examples/benefits.yaml --data data/benefits.csv

Tolerance: counts exact; means within their stated error bound (about 1 ulp).
"""
# schema: benefits.yaml

workers = group_by(data.state)
claimed = group_by(data.state, data.ui, "sum")
rate = group_by(data.state, data.rr, "mean")
reveal(workers, "workers")
reveal(claimed, "claimed_ui")
reveal(rate, "mean_replacement_rate")
