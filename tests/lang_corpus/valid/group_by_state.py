"""Per state: number of people, mean age, total tenure."""
summary = {
    "people": group_by(data.state),
    "mean age": group_by(data.state, data.age, "mean"),
    "tenure": group_by(data.state, data.tenure, "sum"),
}
reveal(summary, "by state")
