# expect: try/except is not part of the language
# at: 3:1
try:
    x = mean(data.age) / count(data.ui)
except ZeroDivisionError:
    x = 0
