"""Public helpers (-> public) size the computation; private ones compute on the data."""
def bins_for(rows: public, per_bin: public) -> public:
    k = rows // per_bin
    if k > 20:
        k = 20
    return k


def share_over(x: private, cut: public) -> private:
    return count(x > cut) / len(data)


n: public = len(data)
k = bins_for(4877, 500)
h = histogram(data.tenure, bins=k)
reveal(h, "tenure histogram")
reveal(share_over(data.age, 50), "share over 50")
reveal(n, "rows")
