# expect: no column 'agee' in schema 'benefits'; did you mean 'age'?
# at: 4:10
x = 1
m = mean(data.agee)
