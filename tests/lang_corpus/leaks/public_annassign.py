# expect: 'total' is declared public but receives a private value
# at: 3:1
total: public = sum(data.tenure)
