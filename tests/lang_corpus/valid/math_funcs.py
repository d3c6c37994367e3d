"""Element-wise math: sqrt, exp, log, abs, select."""
log_benefit = log(data.statemb)
growth = exp(data.rr) - 1
dev = abs(data.age - 40)
root = sqrt(data.tenure)
capped = select(data.tenure > 20, 20, data.tenure)
reveal(mean(log_benefit), "mean log benefit")
reveal(mean(growth) + mean(dev) + mean(root) + mean(capped), "a sum of means")
