"""Enigma from a notebook: a local network, a DataFrame shared into it, a group-by, a labelled
DataFrame back.

Run it from the root of the checkout, as a script (`python examples/notebook.py`, with
`.venv` active) or cell by cell in Jupyter or VS Code (`# %%` marks the cells). It uses the
network `enigma up` started here, or starts one in the background (about a minute); the
last cell stops it again. The owner's key stays in `.enigma-net/owner`, as for the CLI.
"""

# %% A network: the one running here, else a new one of 4 nodes (quorums of 3 store on 4).
import pandas as pd

import enigma.app.api as enigma

net = enigma.local(nodes=4)
print(f"{len(net.owner.ledger.active_nodes())} nodes, owner {net.owner.ledger.address}")

# %% Share a DataFrame: the American Community Survey sample, as pandas reads it.
people = pd.read_csv("data/acs12.csv")
shared = net.share(people, "examples/acs12.yaml", "acs12")
print(f"shared {shared.rows} rows t-of-n on {len(shared.holders)} holders")

# %% A group-by, written against the schema alone and signed by the network's analyst.
script = """
reveal(group_by(data.edu, data.income, "mean"), "mean_income")
reveal(group_by(data.edu), "people")
"""
job = net.run(script, "acs12", analyst=net.analyst())

# %% A labelled DataFrame: a row per level of `edu`, each value beside its error bound.
table = job.table()
print(table)

# %% The shared table back from its holders (the owner alone can), typed by the schema.
back = net.collect("acs12")
print(back.dtypes)

# %% Done: the network keeps running for the next session unless stopped.
net.close()
enigma.stop_local()
