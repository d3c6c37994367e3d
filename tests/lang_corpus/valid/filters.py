"""Filtering rows with a private mask: where(x, mask), where= on reductions, count(mask)."""
applied = data.ui
rr_applied = where(data.rr, applied)
reveal(mean(rr_applied), "rr of applicants")
reveal(mean(data.rr, where=not applied), "rr of the others")
reveal(count(rr_applied), "applicants")
reveal(count(applied and data.married), "married applicants")
