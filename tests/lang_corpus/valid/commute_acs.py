# schema: acs12
"""ACS 2012: commute time of workers, histogram and share with long commutes."""
works = data.hrs_work > 0
commute = where(data.time_to_work, works)
long_commute = count(commute > 45) / count(commute)
h = histogram(data.time_to_work, bins=[0, 15, 30, 45, 60, 200], where=works)
reveal(h, "commute minutes")
reveal(long_commute, "share over 45 minutes")
