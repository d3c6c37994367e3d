# expect: kmeans() needs the value range of every column
# at: 4:5
z = (data.age - mean(data.age)) / std(data.age)
c = kmeans([z, data.tenure], k=3)
