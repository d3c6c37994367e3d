"""Unemployment-insurance take-up by state: share of applicants and head count per state."""
share = group_by(data.state, data.ui, "mean")
people = group_by(data.state)
applied = group_by(data["state"], values=data.ui, agg="sum")
reveal(share, "ui share by state")
reveal(people, "people by state")
reveal(applied, "applicants by state")
