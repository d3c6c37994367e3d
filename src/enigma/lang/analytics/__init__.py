"""The analytics library of the analyst's language: engine-level functions on secret columns.

Each function takes an `Engine`, secret fixed-point columns and their public
metadata (a `Range` per column from the schema, the public row count) and
returns `Bounded` results: the secret value, a worst-case absolute error
bound and the range of the exact value. See docs/analytics.md.
"""
