# expect: line 4 is a call to reveal()
# at: 3:4
if count(data.ui) > 10:
    reveal(1, "many")
