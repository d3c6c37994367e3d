"""The analytics library of the analyst's language: engine-level functions on secret columns.

Each function takes an `Engine`, secret fixed-point columns and their public
metadata (a `Range` per column from the schema; the row count is the public
length of the column) and returns `Bounded` results: the secret value, a
worst-case absolute error bound and the range of the exact value. Which names
a script may call is `lang.library.LIBRARY`; the compiler (`lang.mpc_library`)
maps each call onto these functions. See docs/analytics.md.

Modules: `precision` (ranges, bounds, scaling by public ratios), `moments`,
`order`, `categorical`, `regression`, `models` (k-means, t-test), and
`reciprocals` (the G-bit reciprocals and roots the models share).
"""

from .precision import Bounded, PrecisionError, Range

__all__ = ["Bounded", "PrecisionError", "Range"]
