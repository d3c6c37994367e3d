"""The analytics library of the analyst's language: engine-level functions on secret columns.

Each function takes an `Engine`, secret fixed-point columns and their public
metadata (a `Range` per column from the schema; the row count is the public
length of the column) and returns `Bounded` results: the secret value, a
worst-case absolute error bound and the range of the exact value. The
compiler maps a script's library call to `LIBRARY[name]`. See docs/analytics.md.

Modules: `precision` (ranges, bounds, scaling by public ratios), `moments`,
`order`, `categorical`, `regression`, `models` (k-means, t-test), and
`reciprocals` (the G-bit reciprocals and roots the models share).
"""

from . import categorical, models, moments, order, regression
from .precision import Bounded, PrecisionError, Range

LIBRARY = {
    "count": moments.count,
    "sum": moments.sum,
    "mean": moments.mean,
    "var": moments.variance,
    "std": moments.std,
    "cov": moments.cov,
    "corr": moments.corr,
    "min": order.min,
    "max": order.max,
    "median": order.median,
    "percentile": order.percentile,
    "histogram": categorical.histogram,
    "histogram_bins": categorical.histogram_bins,
    "group_by": categorical.group_by,
    "chi2": categorical.chi2,
    "linear_regression": regression.linear_regression,
    "kmeans": models.kmeans,
    "ttest": models.ttest,
}
"""Library names as an analyst writes them, and the function each one compiles to."""

__all__ = ["LIBRARY", "Bounded", "PrecisionError", "Range"]
