# expect: 'shown' is declared public but receives a private value
# at: 4:1
shown: public = 0
shown = mean(data.rr)
