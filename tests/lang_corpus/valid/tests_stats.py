"""Two-sample t test of replacement rates by UI take-up; chi-square of UI against sex."""
t = ttest(where(data.rr, data.ui), where(data.rr, not data.ui))
x2 = chi2(data.ui, data.sex)
reveal(t, "t statistic")
reveal(x2, "chi-square ui x sex")
