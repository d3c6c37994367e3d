# expect: 'flag' is declared public but is assigned under a private condition
# at: 5:5
flag: public = 0
if mean(data.age) > 40:
    flag = 1
