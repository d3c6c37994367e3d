"""Average age of a population (data/acs12.csv, schema examples/acs12.yaml).

Reveals to the data owner the mean age, how many people are 65 or older, and
the mean age of citizens only (a filtered mean: the number of citizens stays
private, the division is secret).

    enigma check examples/average_age.py
    enigma script run examples/average_age.py --schema examples/acs12.yaml --data data/acs12.csv

Tolerance: each result within its stated error bound (1 ulp = 2^-16, about 1.5e-5).
"""
# schema: acs12.yaml

ages = data.age
reveal(mean(ages), "mean_age")
reveal(count(ages, where=ages >= 65), "people_65_and_over")
reveal(mean(ages, where=data.citizen), "mean_age_of_citizens")
