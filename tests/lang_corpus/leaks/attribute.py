# expect: attribute access is limited to data.<column>
# at: 4:5
ages = data.age
m = ages.mean()
