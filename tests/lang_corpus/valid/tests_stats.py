"""Statistical tests on benefits: two-sample, one-sample and paired t, chi-square of
independence and goodness of fit, correlation, one-way ANOVA, a proportion; variance with
pandas' ddof."""
t = ttest(where(data.rr, data.ui), where(data.rr, not data.ui))
pooled = ttest(where(data.rr, data.ui), where(data.rr, not data.ui), equal_var=True)
x2 = chi2(data.ui, data.sex)
reveal(t, "t statistic")
reveal(pooled, "student t")
reveal(x2, "chi-square ui x sex")
reveal(ttest_1samp(data.age, 40), "age is 40")
reveal(ttest_rel(data.age, data.tenure), "paired")
reveal(chisquare(data.joblost), "reasons even")
reveal(pearsonr(data.age, data.tenure), "r")
reveal(anova(data.rr, data.joblost), "anova")
reveal(proportion(data.ui, where=data.age > 40), "share")
reveal(std(data.age, ddof=1), "sd")
