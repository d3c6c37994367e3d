# schema: acs12
"""ACS 2012: mean income by education and employment rate by gender."""
income_by_edu = group_by(data.edu, data.income, "mean")
employed = data.employment == "employed"
rate = group_by(data.gender, employed, "mean")
working_age = (data.age >= 18) and (data.age < 65)
reveal(income_by_edu, "mean income by education")
reveal(rate, "employment rate by gender")
reveal(mean(data.income, where=working_age), "income, ages 18-64")
