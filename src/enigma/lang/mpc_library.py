"""The analytics library on private values: each call of a script compiled onto the engine.

`MpcBackend.call` hands every library call with a private argument here
(calls on public values alone run in numpy, `plain.library`). Each `lib_<name>`
takes the call's arguments bound by `library.LIBRARY` and returns an `Fx`
whose error bound is the analytics function's own (docs/analytics.md) plus
what its inputs carried; a call the engine cannot run is refused naming the
script's line.
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from enigma.mpc import functions
from enigma.mpc.fixed import trunc_many
from enigma.mpc.secret import Secret, concat
from enigma.mpc.select import lt

from .analytics import anova, categorical, logistic, models, moments, order, regression, storage
from .analytics.precision import (
    DEFAULT_SPREAD,
    Bounded,
    PrecisionError,
    Range,
    divide_by_count,
    scale_public,
    table,
)
from .batching import FRAC, MASK_LIMIT, VALUE_LIMIT, Fx, size_of
from .library import bind
from .plain import kmeans_start, levels_of
from .syntax import Call, ValueType

if TYPE_CHECKING:
    from .mpc_backend import MpcBackend


class CompiledLibrary:
    """The library calls of one `MpcBackend` (one party's run of a script)."""

    def __init__(self, backend: MpcBackend) -> None:
        self.m, self.e, self.n = backend, backend.e, backend.n

    def call(self, name: str, args: list[Any], kwargs: dict[str, Any], node: Call) -> Fx:
        if name in ("min", "max") and len(args) >= 2:
            return self.elementwise_extreme(args, node, name == "max")
        fn = getattr(self, "lib_" + name, None)
        if fn is None:
            raise self.m.err(node, f"{name}() on private values is not compiled yet",
                             "run it in a dry run (plaintext), or see docs/compiler.md for the "
                             "functions the engine runs")
        try:
            return fn(bind(name, args, kwargs), node)
        except PrecisionError as exc:
            raise self.m.err(node, f"{name}(): {exc}") from exc

    def bounded(self, b: Bounded, shape: tuple[int, ...], extra_err: float = 0.0) -> Fx:
        return Fx(self.m, [b.value], b.f, b.range.lo, b.range.hi,
                  float(np.max(b.error)) + extra_err, False, shape)


    def lib_count(self, a: dict, node: Call) -> Any:
        x = a["x"]
        t = node.args[0].type
        w = self.m.selection(x, a.get("where"), node) if isinstance(x, Fx) else a.get("where")
        if isinstance(t, ValueType) and t.kind.name == "bool":
            w = x if w is None else self.m.mul(w, x, node)
        if w is None:
            return self.n
        total = w.secret.sum()
        return Fx(self.m, [total], 0, 0.0, float(w.shape[0]), 0.0, True, ())

    def lib_sum(self, a: dict, node: Call) -> Fx:
        x = self.m.plain_column(a["x"], node, "sum")
        w = self.m.selection(x, a.get("where"), node)
        if w is not None:
            x = self.m.mul(w, replace(x, mask=None), node)
        n = x.shape[0]
        lo, hi = n * min(x.lo, 0.0), n * max(x.hi, 0.0)
        self.m.require(max(-lo, hi) * 2.0**x.f, VALUE_LIMIT, node, "this sum")
        return Fx(self.m, [x.secret.sum()], x.f, lo, hi,
                  n * x.err + storage.sum_shift(n, x.stored), x.integer, ())

    def lib_mean(self, a: dict, node: Call) -> Fx:
        x = self.m.plain_column(a["x"], node, "mean")
        w = self.m.selection(x, a.get("where"), node)
        r = Range(x.lo, x.hi)
        if w is None:
            b = moments.mean(self.e, self.m.up(x, FRAC).secret, r, FRAC)
            return self.bounded(b, (), x.err + x.stored)
        n = x.shape[0]
        mid, width = r.center(FRAC)
        xc = self.m.up(x, FRAC).secret - mid
        sums = self.e.dot(w.secret, xc)
        count = w.secret.sum()
        q, err = divide_by_count(self.e, sums.reshape(1), count.reshape(1), width, n, "mean")
        out = q.reshape() + mid
        return Fx(self.m, [out], FRAC, min(x.lo, 0.0), max(x.hi, 0.0),
                  err * 2.0**-FRAC + x.err + x.stored, False, ())

    def _moment(self, a: dict, node: Call, fn) -> Fx:
        x = self.m.plain_column(a["x"], node, node.func)
        if x.err:
            raise self.m.err(node, f"{node.func}() of a computed column with rounding is not "
                                 "compiled yet", "apply it to a column of the data")
        w = self.m.selection(x, a.get("where"), node)
        ddof = int(a.get("ddof", 0))
        # storage rounding: a filtered ddof=1 selection may hold 2 rows (the factor 2)
        factor = storage.ddof_factor(x.shape[0], ddof) if w is None else 1.0 + ddof
        shift = (storage.variance_shift(x.hi - x.lo, x.stored, factor)
                 if fn is moments.variance else storage.std_shift(x.stored, factor))
        if w is None:
            try:
                b = fn(self.e, self.m.up(x, FRAC).secret, Range(x.lo, x.hi), ddof, FRAC)
            except ValueError as exc:
                raise self.m.err(node, f"{node.func}(): {exc}") from exc
            return self.bounded(b, (), shift)
        if ddof > 1:
            raise self.m.err(node, f"{node.func}() of a filtered column takes ddof 0 or 1",
                             "a selection may hold fewer rows than ddof; use ddof=1 (pandas) "
                             "or 0 (numpy)")
        try:
            var, err, top = self.filtered_variance(x, w)
            if ddof:
                var, err, top = self.sample_variance(var, err, top, w)
        except PrecisionError as exc:
            raise self.m.err(node, f"{node.func}(): {exc}") from exc
        if fn is moments.variance:
            return Fx(self.m, [var], FRAC, 0.0, top, err + shift, False, ())
        bits = max(int(top * 2**FRAC).bit_length() + 1, 2)
        root = functions.sqrt(self.e, var, FRAC, bits=bits)
        hi = math.sqrt(top)
        return Fx(self.m, [root], FRAC, 0.0, hi,
                  2 * 2.0**-FRAC + hi * 2.0**-36 + math.sqrt(err) + shift, False, ())

    def lib_variance(self, a: dict, node: Call) -> Fx:
        return self._moment(a, node, moments.variance)

    def lib_std(self, a: dict, node: Call) -> Fx:
        return self._moment(a, node, moments.std)

    def filtered_variance(self, x: Fx, w: Fx) -> tuple[Secret, float, float]:
        """Population variance of the selected rows: (value with FRAC bits, error, range top).

        With x' = x - m (codes, m the range's midpoint), W the 0/1 selection:
        1. Wx' (one round); S1 = sum Wx', S2 = sum Wx' x' (one fused dot), c = sum W.
        2. q1 = S1 / c, q2 = S2 / c (`divide_by_count`, twice).
        3. var = (q2 - q1^2) / 2^f (one product, one truncation).
        Error: e2 2^-2f + (2 w e1 + e1^2) 2^-2f + 2^-f (e1, e2 the divisions' errors in
        units, w the half-width of the codes). Empty selection: 0.
        """
        e, n, f = self.e, self.n, FRAC
        mid, width = Range(x.lo, x.hi).center(f)
        xc = self.m.up(x, f).secret - mid
        wx = e.mul(w.secret, xc)
        s1, s2, c = wx.sum().reshape(1), e.dot(wx, xc).reshape(1), w.secret.sum().reshape(1)
        q1, e1 = divide_by_count(e, s1, c, width, n, "variance")
        q2, e2 = divide_by_count(e, s2, c, width * width, n, "variance")
        self.m.require(float(width) ** 2 * 2, MASK_LIMIT, None, "a squared mean")
        (var,) = trunc_many(e, [q2 - e.mul(q1, q1)], [f])
        err = (e2 + 2 * width * e1 + e1 * e1) * 2.0 ** (-2 * f) + 2.0**-f
        top = (width * 2.0**-f) ** 2
        return var.reshape(), err, top

    def sample_variance(self, var: Secret, err: float, top: float, w: Fx
                        ) -> tuple[Secret, float, float]:
        """The population variance of c selected rows times c / (c - 1) (ddof = 1).

        1. c = sum W, floored at 2 (one comparison): below 2 rows the variance is 0 and
           stays 0, as pandas' NaN has no encoding.
        2. r = c / (c - 1) in [1, 2]: `reciprocal` of c - 1 with F bits, times c (exact).
        3. var r, truncated by F (one round).
        Error: 2 e_var + (top + e_var) e_r + 2^-f, e_r = n 2^(1-F) + 2 2^-(g-3) the
        error of r (as `models._ttest_bounds`' d(c) times c).
        """
        e, n, f = self.e, self.n, FRAC
        top_code = int(top * 2**f) + 1
        F = min(44, 83 - top_code.bit_length())
        if F < 20:
            raise PrecisionError(f"the variance of this column (up to {top:.3g}) leaves "
                                 f"{F} bits for the ddof correction; narrow its range")
        c = w.secret.sum().reshape(1)
        small = lt(e, c, 2, bits=(n + 2).bit_length() + 1)
        c = c + e.mul(small, (-c) + 2)
        rec = functions.reciprocal(e, c - 1, 0, bits=(n + 2).bit_length() + 1, out_frac=F)
        r = e.mul(rec, c)
        (out,) = trunc_many(e, [e.mul(var.reshape(1), r)], [F])
        g = min(functions.G, 84 - (F - 1))
        e_r = n * 2.0 ** (1 - F) + 2 * 2.0 ** -(g - 3)
        return out.reshape(), 2 * err + (top + err) * e_r + 2.0**-f, 2 * top

    def _order(self, a: dict, node: Call, fn, *extra) -> Fx:
        """An order statistic of a column, compared at the column's own scale x.f, the
        result at FRAC (order.py); a percentile of a filtered column by
        `order.percentile_selected` (min and max substitute the other end first)."""
        x = self.m.plain_column(a["x"], node, node.func)
        w = self.m.selection(x, a.get("where"), node)
        col, f_out = Range(x.lo, x.hi), max(FRAC, x.f)
        if w is not None:
            q = float(a["q"]) if node.func == "percentile" else 50.0
            b = order.percentile_selected(self.e, replace(x, mask=None).secret, w.secret, col,
                                          q, f_out, x.f)
        else:
            b = fn(self.e, x.secret, col, *extra, f_out, x.f)
        return self.bounded(b, (), x.err + x.stored)

    def lib_median(self, a: dict, node: Call) -> Fx:
        return self._order(a, node, order.median)

    def lib_percentile(self, a: dict, node: Call) -> Fx:
        return self._order(a, node, order.percentile, float(a["q"]))

    def lib_min(self, a: dict, node: Call) -> Fx:
        return self._extreme(a, node, False)

    def lib_max(self, a: dict, node: Call) -> Fx:
        return self._extreme(a, node, True)

    def _extreme(self, a: dict, node: Call, largest: bool) -> Fx:
        """min/max of a column; of a filtered one, unselected rows first become the range's
        other end (one selection), so an empty selection gives that end."""
        x = self.m.plain_column(a["x"], node, node.func)
        w = self.m.selection(x, a.get("where"), node)
        if w is not None:
            x = self.m.where(w, replace(x, mask=None), x.lo if largest else x.hi, node)
            a = {"x": x}
        return self._order(a, node, order.max if largest else order.min)

    def elementwise_extreme(self, items: list[Any], node: Call, largest: bool) -> Any:
        """min(a, b, ...) / max(a, b, ...): a comparison and a selection per extra operand.

        The range narrows: a min is at most the least top of its operands and at least the
        least bottom (a max conversely), so min(q, 8) of a wide quotient q is at most 8 and
        the products after it are sized by that (the selection alone would keep q's range).
        """
        out = items[0]
        for other in items[1:]:
            better = self.m.compare(">" if largest else "<", other, out, node)
            out = self.m.where(better, other, out, node)
        ranges = [self.m.fx(v) for v in items]
        pick = max if largest else min
        return replace(out, lo=pick(r.lo for r in ranges), hi=pick(r.hi for r in ranges))

    def lib_clip(self, a: dict, node: Call) -> Fx:
        """clip(x, lo, hi) for public bounds lo <= hi (as `mpc.select.clip`):
        1. [x < lo] and [x > hi], two comparisons in one batch;
        2. x + [x < lo] (lo - x) + [x > hi] (hi - x), two exact products in one round.
        The result lies in [lo, hi] (exactly: the products are of 0/1 bits), as does the
        exact clip, so its error is x's error or the width hi - lo, whichever is smaller:
        a clip also bounds the error a wide quotient brought.
        """
        x = self.m.fx(a["x"])
        lo, hi = self.m.fx(a["lo"]), self.m.fx(a["hi"])
        if lo.hi > hi.lo:
            raise self.m.err(node, f"clip bounds are reversed: {lo.hi} > {hi.lo}")
        below = self.m.compare("<", x, a["lo"], node)
        above = self.m.compare(">", x, a["hi"], node)
        up = self.m.mul(below, self.m.add(self.m.negate(x, node), a["lo"], node), node)
        down = self.m.mul(above, self.m.add(self.m.negate(x, node), a["hi"], node), node)
        out = self.m.add(self.m.add(x, up, node), down, node)
        rounding = max(lo.err, hi.err)  # the bounds as encoded
        width = hi.hi - lo.lo
        return replace(out, lo=min(max(x.lo, lo.lo), hi.lo) - rounding,
                       hi=min(max(x.hi, lo.hi), hi.hi) + rounding,
                       err=min(x.err, width + rounding) + rounding,
                       integer=x.integer and lo.integer and hi.integer,
                       stored=min(x.stored, width))

    def lib_histogram(self, a: dict, node: Call) -> Fx:
        x = self.m.plain_column(a["x"], node, "histogram")
        w = self.m.selection(x, a.get("where"), node)
        t = node.args[0].type
        if isinstance(t, ValueType) and t.kind.name in ("category", "bool"):
            levels = len(t.kind.levels) if t.kind.name == "category" else 2
            hot = self.m.one_hot(x, levels)
            if w is None:
                counts = hot.sum(axis=0)
            else:  # rows weighted by the selection: one fused dot
                n = size_of(x.shape)
                weights = w.secret.reshape(n, 1).broadcast_to(n, levels)
                counts = self.e.dot(weights, hot, axis=0)
            return Fx(self.m, [counts], 0, 0.0, float(x.shape[0]), 0.0, True, (levels,))
        bins = a.get("bins", 10)
        rng = a.get("range", (x.lo, x.hi))
        edges = list(bins) if isinstance(bins, list | tuple) else \
            list(np.linspace(float(rng[0]), float(rng[1]), int(bins) + 1))
        # compared at the column's own scale: an int column's codes are the integers, so
        # its comparisons take the range's bits, not 16 more (edges round to the same bins)
        b = categorical.histogram_bins(self.e, replace(x, mask=None).secret,
                                       Range(x.lo, x.hi), edges, x.f,
                                       None if w is None else w.secret)
        return Fx(self.m, [b.value], 0, 0.0, float(x.shape[0]), 0.0, True, (len(edges) - 1,))

    def lib_group_by(self, a: dict, node: Call) -> Fx:
        """Count, sum or mean per level, from one shared one-hot of the key (as
        `analytics.categorical.group_by`, which makes its own one-hot per call):
        1. H = one-hot of the key (one opening, once per key column).
        2. count = column sums of H (local); S = sum_r H_rl x_r for centred x (one fused dot).
        3. sum = S + count m (exact); mean = S / count + m by `divide_by_count`.
        A filtered key or values (`where(x, mask)`) weight the rows: H becomes w H (one
        product round), so a filtered-out row is in no cell, as in the plain path.
        """
        key = a["key"]
        t = node.args[0].type
        levels = len(t.kind.levels) if t.kind.name == "category" else 2  # type: ignore
        if not isinstance(key, Fx) or key.shape != (self.n,):
            raise self.m.err(node, "group_by() of a private key needs a column of the table")
        hot = self.group_rows(key, a.get("values"), levels, node)
        n = self.n
        counts = hot.sum(axis=0)
        agg = a.get("agg", "count")
        if agg == "count":
            return Fx(self.m, [counts], 0, 0.0, float(n), 0.0, True, (levels,))
        x = replace(self.m.plain_column(a["values"], node, "group_by"), mask=None)
        f = FRAC if agg == "mean" else x.f
        mid, width = Range(x.lo, x.hi).center(f)
        self.m.require(n * max(abs(x.lo), abs(x.hi)) * 2.0**f, VALUE_LIMIT, node,
                       "a group's sum")
        xc = self.m.up(x, f).secret - mid
        wide = Secret(self.e, type(xc.share)(
            np.ascontiguousarray(np.broadcast_to(xc.share.value[:, None], (n, levels, 2))),
            np.ascontiguousarray(np.broadcast_to(xc.share.mac[:, None], (n, levels, 2)))))
        sums_c = self.e.dot(hot, wide, axis=0)
        if agg == "sum":
            lo, hi = n * min(x.lo, 0.0), n * max(x.hi, 0.0)
            return Fx(self.m, [sums_c + counts * mid], f, lo, hi,
                      n * x.err + storage.sum_shift(n, x.stored), x.integer, (levels,))
        try:
            q, err = divide_by_count(self.e, sums_c, counts, width, n, "group_by")
        except PrecisionError as exc:
            raise self.m.err(node, str(exc)) from exc
        return Fx(self.m, [q + mid], FRAC, min(x.lo, 0.0), max(x.hi, 0.0),
                  err * 2.0**-FRAC + x.err + x.stored, False, (levels,))

    def group_rows(self, key: Fx, values: Any, levels: int, node: Call) -> Secret:
        """The (n, levels) membership of a group_by: the key's one-hot, times the rows a
        filtered key or filtered values keep (0/1 weights; one product round)."""
        hot = self.m.one_hot(key, levels)
        w = self.m.selection(key, values.mask if isinstance(values, Fx) else None, node)
        if w is None:
            return hot
        n = key.shape[0]
        return self.e.mul(w.secret.reshape(n, 1).broadcast_to(n, levels), hot)

    def vector(self, parts: list[Bounded], f: int = FRAC, integer: bool = False) -> Fx:
        """A test's revealed vector (`lang.pvalues.TESTS`) from scalar results with f
        fractional bits, each with its own error bound."""
        value = concat([p.value.reshape(1) for p in parts])
        errs = np.array([float(np.max(p.error)) for p in parts])
        lo = min(p.range.lo for p in parts)
        hi = max(p.range.hi for p in parts)
        return Fx(self.m, [value], f, lo, hi, float(errs.max()), integer, (len(parts),),
                  errs=errs)

    def exact(self, x: Secret, top: float, f: int = FRAC) -> Bounded:
        """An exact integer (a count, a dof) as a Bounded with f fractional bits."""
        return Bounded(x.reshape() * (1 << f), 0.0, Range(0, top), f)

    def lib_chi2(self, a: dict, node: Call) -> Fx:
        """[statistic, df] of two category (or boolean) columns
        (`analytics.categorical.chi2`: scipy's chi2_contingency without correction; df
        counts the levels that occur)."""
        x, y = self.m.fx(a["x"]), self.m.fx(a["y"])
        levels = [levels_of(node, "x"), levels_of(node, "y")]
        if x.mask is not None or y.mask is not None:
            raise self.m.err(node, "chi2() of filtered columns is not compiled yet")
        out = categorical.chi2(self.e, x.secret, levels[0], y.secret, levels[1], FRAC)
        return self.vector([out.statistic, self.exact(out.df, out.dof)])

    def lib_chisquare(self, a: dict, node: Call) -> Fx:
        """[statistic, df] of the goodness of fit of a category column to public proportions
        p (scipy's `chisquare(counts, n p)`), df = k - 1:
        1. O = column sums of the one-hot of x (one opening, local sums): exact counts.
        2. O^2 (one round), exact.
        3. sum_i O_i^2 / (n p_i) - n by `scale_public` with a public multiplier per level
           (one round). Error: one unit per limb per level, in 2^-f.
        """
        x = self.m.fx(a["x"])
        k = levels_of(node, "x")
        if x.mask is not None or x.shape != (self.n,):
            raise self.m.err(node, "chisquare() tests an unfiltered column of the table")
        p = [Fraction(float(v)) for v in a.get("p", [1.0 / k] * k)]
        counts = self.m.one_hot(x, k).sum(axis=0)
        n = self.n
        try:
            scaled, units = scale_public(
                self.e, self.e.mul(counts, counts), n * n,
                [Fraction(1 << FRAC) / (n * q) for q in p], 1, 0, "chisquare", "a squared count")
        except PrecisionError as exc:
            raise self.m.err(node, f"chisquare(): {exc}") from exc
        stat = scaled.sum() - n * (1 << FRAC)
        top = n / float(min(p)) - n
        err = float(np.sum(units)) * 2.0**-FRAC
        df = self.e.constant(self.e.field.from_ints([k - 1]))
        return self.vector([Bounded(stat, err, Range(0, top), FRAC), self.exact(df, k - 1)])

    def lib_pearsonr(self, a: dict, node: Call) -> Fx:
        """[r, n - 2, floored]: `corr` (its floors and bound), the public dof of its t-test,
        and how many of the two spreads lie below corr's floor (r is then not the sample's:
        the owner is told so instead of a p-value)."""
        x, y = (self.exact_column(a[p], node) for p in ("x", "y"))
        if x.mask is not None or y.mask is not None or x.shape[0] < 3:
            raise self.m.err(node, "pearsonr() needs two unfiltered columns of at least 3 rows")
        both = table([self.m.up(x, FRAC).secret, self.m.up(y, FRAC).secret])
        ranges = [Range(x.lo, x.hi), Range(y.lo, y.hi)]
        c = moments.corr(self.e, both, ranges, f=FRAC)
        df = self.e.constant(self.e.field.from_ints([x.shape[0] - 2]))
        shift = pair_shift(False, [(x.lo, x.hi), (y.lo, y.hi)], [x.stored, y.stored],
                           x.shape[0])
        r = Bounded(c.value[0, 1], float(c.error[0, 1]) + shift, c.range, FRAC)
        # whether a spread is below corr's floor (its default min_std): one variance of
        # each column (two rounds) and one comparison
        var = moments.variance(self.e, both, ranges, 0, FRAC)
        floors = [round((rg.width * DEFAULT_SPREAD) ** 2 * 2**FRAC) for rg in ranges]
        top = max(rg.width for rg in ranges) ** 2 * 2**FRAC
        low = lt(self.e, var.value, self.e.field.from_ints(floors), bits=int(top).bit_length() + 2)
        return self.vector([r, self.exact(df, x.shape[0] - 2), self.exact(low.sum(), 2)])

    def lib_anova(self, a: dict, node: Call) -> Fx:
        """[eta^2, k' - 1, n - k', floored] (`analytics.anova`); the owner makes F of it."""
        x = self.exact_column(a["x"], node)
        g = self.m.fx(a["group"])
        k = levels_of(node, "group")
        if x.mask is not None or g.mask is not None or x.shape != (self.n,):
            raise self.m.err(node, "anova() compares unfiltered columns of the table")
        try:
            out = anova.anova(self.e, self.m.up(x, FRAC).secret, self.m.one_hot(g, k),
                              Range(x.lo, x.hi), FRAC)
        except ValueError as exc:
            raise self.m.err(node, f"anova(): {exc}") from exc
        f = out.eta2.f
        out.eta2.error = float(np.max(out.eta2.error)) + storage.eta2_shift(
            x.stored, (x.hi - x.lo) * DEFAULT_SPREAD)
        between = self.exact(out.groups - 1, k - 1, f)
        within = self.exact((-out.groups) + self.n, self.n, f)
        return self.vector([out.eta2, between, within, self.exact(out.floored, 1, f)], f)

    def lib_proportion(self, a: dict, node: Call) -> Fx:
        """[count, n]: the true values of a boolean column among the rows counted (all, or
        those of the filter and where=), both exact (one fused dot when filtered)."""
        x = self.m.plain_column(a["x"], node, "proportion")
        w = self.m.selection(x, a.get("where"), node)
        bare = replace(x, mask=None)
        if w is None:
            parts = [bare.secret.sum().reshape(1),
                     self.e.constant(self.e.field.from_ints([x.shape[0]]))]
        else:
            parts = [self.e.dot(w.secret, bare.secret).reshape(1), w.secret.sum().reshape(1)]
        return Fx(self.m, [concat(parts)], 0, 0.0, float(x.shape[0]), 0.0, True, (2,))

    def lib_where(self, a: dict, node: Call) -> Fx:
        x, m = a["x"], a["mask"]
        x = self.m.fx(x)
        mask = m if x.mask is None else self.m.mul(x.mask, m, node)
        return replace(x, mask=self.m.fx(mask))

    def _pair(self, a: dict, node: Call, fn, **kw) -> Fx:
        x, y = (self.m.plain_column(a[p], node, node.func) for p in ("x", "y"))
        if x.err or y.err:
            raise self.m.err(node, f"{node.func}() of computed columns is not compiled yet",
                             "apply it to columns of the data")
        both = table([self.m.up(x, FRAC).secret, self.m.up(y, FRAC).secret])
        b = fn(self.e, both, [Range(x.lo, x.hi), Range(y.lo, y.hi)], f=FRAC, **kw)
        err = b.error[0, 1] if np.ndim(b.error) else b.error
        return Fx(self.m, [b.value[0, 1]], b.f, b.range.lo, b.range.hi,
                  float(err) + pair_shift(fn is moments.cov, [(x.lo, x.hi), (y.lo, y.hi)],
                                          [x.stored, y.stored], x.shape[0]), False, ())

    def lib_cov(self, a: dict, node: Call) -> Fx:
        return self._pair(a, node, moments.cov, ddof=1)

    def lib_corr(self, a: dict, node: Call) -> Fx:
        return self._pair(a, node, moments.corr)

    def lib_sqrt(self, a: dict, node: Call) -> Fx:
        x = self.m.up(self.m.fx(a["x"]), FRAC)
        bits = int(x.mag * 2.0**FRAC).bit_length() + 1
        out = functions.sqrt(self.e, x.secret, FRAC, bits=max(bits, 2))
        hi = math.sqrt(max(x.hi, 0.0))
        err = 2 * 2.0**-FRAC + hi * 2.0**-36 + math.sqrt(x.err)
        return Fx(self.m, [out], FRAC, 0.0, hi, err, False, x.shape,
                  stored=math.sqrt(x.stored))

    def lib_exp(self, a: dict, node: Call) -> Fx:
        x = self.m.up(self.m.fx(a["x"]), FRAC)
        hi = math.exp(x.hi)
        self.m.require(hi * 2.0**FRAC, VALUE_LIMIT, node, "exp() of this value")
        slack = x.err + 2.0**-FRAC  # the computed value's distance from its range, at most
        out = functions.exp(self.e, x.secret, FRAC, bounds=(x.lo - slack, x.hi + slack))
        err = 2.0**-FRAC + hi * 2.0**-34 + hi * (math.exp(x.err) - 1)
        return Fx(self.m, [out], FRAC, math.exp(x.lo), hi, err, False, x.shape,
                  stored=hi * math.expm1(x.stored))

    def lib_log(self, a: dict, node: Call) -> Fx:
        x = self.m.up(self.m.fx(a["x"]), FRAC)
        bits = int(x.mag * 2.0**FRAC).bit_length() + 1
        out = functions.log(self.e, x.secret, FRAC, bits=max(bits, 2))
        floor = max(x.lo, 2.0**-FRAC)
        lo, hi = math.log(floor), math.log(max(x.hi, floor))
        err = 2.0**-FRAC + 2.0**-34 + x.err / floor
        return Fx(self.m, [out], FRAC, lo, hi, err, False, x.shape,
                  stored=x.stored / max(floor - x.stored, 2.0**-FRAC) if x.stored else 0.0)

    def lib_abs(self, a: dict, node: Call) -> Fx:
        x = self.m.fx(a["x"])
        neg = self.m.compare("<", x, 0, node)
        out = self.m.where(neg, self.m.negate(x, node), x, node)
        top = x.mag
        low = 0.0 if x.lo <= 0 <= x.hi else min(abs(x.lo), abs(x.hi))
        return replace(out, lo=low, hi=top)

    def lib_ttest(self, a: dict, node: Call) -> Fx:
        """[t, dof] of two samples (`analytics.models.ttest_samples`): vectors or columns,
        filtered or not, each sample's selection its weights; both on one range (the hull
        of theirs). scipy's `ttest_ind(x, y, equal_var=...)`: Welch by default."""
        x, y = (self.exact_column(a[p], node) for p in ("x", "y"))
        wx, wy = (None if v.mask is None else v.mask.secret for v in (x, y))
        col = Range(min(x.lo, y.lo), max(x.hi, y.hi))
        try:
            out = models.ttest_samples(self.e, self.m.up(x, FRAC).secret, wx,
                                       self.m.up(y, FRAC).secret, wy, col, f=FRAC,
                                       pooled=bool(a.get("equal_var", False)))
        except ValueError as exc:
            raise self.m.err(node, f"ttest(): {exc}") from exc
        delta = max(x.stored, y.stored)
        n = max(x.shape[0], y.shape[0])
        spread = col.width * DEFAULT_SPREAD
        pooled = bool(a.get("equal_var", False))
        out.t.error = float(np.max(out.t.error)) + storage.t_shift(
            delta, spread, n, out.t.range.magnitude)
        if not pooled:  # Student's dof counts values: exact
            out.dof.error = float(np.max(out.dof.error)) + storage.dof_shift(
                delta, spread, out.dof.range.hi)
        sizes = tuple(None if v.mask is not None else v.shape[0] for v in (x, y))
        return self.t_vector(out, 2, delta, storage.se_shift(delta, sizes, pooled))

    def lib_ttest_1samp(self, a: dict, node: Call) -> Fx:
        """[t, n - 1] of a column against a public mean (`analytics.models.ttest_one`)."""
        return self._one_sample(self.exact_column(a["x"], node), float(a["popmean"]), node)

    def lib_ttest_rel(self, a: dict, node: Call) -> Fx:
        """[t, n - 1] of paired columns: the one-sample test of x - y (exact) against 0."""
        x, y = (self.exact_column(a[p], node) for p in ("x", "y"))
        diff = self.m.binop("-", x, y, node)
        return self._one_sample(diff, 0.0, node)

    def _one_sample(self, x: Fx, popmean: float, node: Call) -> Fx:
        if x.mask is not None or x.err:
            raise self.m.err(node, f"{node.func}() tests unfiltered columns of the data")
        try:
            out = models.ttest_one(self.e, self.m.up(x, FRAC).secret, Range(x.lo, x.hi),
                                   popmean, f=FRAC)
        except ValueError as exc:
            raise self.m.err(node, f"{node.func}(): {exc}") from exc
        out.t.error = float(np.max(out.t.error)) + storage.t_shift(
            x.stored, (x.hi - x.lo) * DEFAULT_SPREAD, x.shape[0], out.t.range.magnitude, 1)
        return self.t_vector(out, 1, x.stored, storage.se_shift(x.stored, (x.shape[0],)))

    def t_vector(self, out: models.TTest, samples: int, delta: float, se_shift: float) -> Fx:
        """[t, df, floored, diff, se] (`lang.pvalues.TESTS`): diff and se carry what storage
        rounding moves them by, so that the owner's quotient diff / se is bounded against
        the data as written."""
        out.diff.error = float(np.max(out.diff.error)) + storage.difference_shift(delta,
                                                                                  samples)
        out.se.error = float(np.max(out.se.error)) + se_shift
        f = out.t.f
        return self.vector([out.t, out.dof, self.exact(out.floored, samples, f), out.diff,
                            out.se], f)

    def exact_column(self, v: Any, node: Call) -> Fx:
        x = self.m.plain_column(v, node, node.func)
        if x.err:
            raise self.m.err(node, f"{node.func}() of computed columns with rounding is not "
                                   "compiled yet", "test columns of the data, or exact "
                                                   "(integer) functions of them")
        return x

    def lib_kmeans(self, a: dict, node: Call) -> Fx:
        cols, secrets = self.m.model_columns(a["x"], node, FRAC)
        k, iters = int(a["k"]), int(a.get("iters", 10))
        start = kmeans_start(node, k, len(cols), a.get("init"))
        out = models.kmeans(self.e, table(secrets), [Range(c.lo, c.hi) for c in cols], start,
                            iters, FRAC, str(a.get("ties", "first")))
        return self.bounded(out.centroids, (k, len(cols)), max(c.err + c.stored for c in cols))

    def lib_linreg(self, a: dict, node: Call) -> Fx:
        """[intercept,] slopes by the library's least squares (`analytics.regression`;
        ridge only when the script passes one), with its worst-case bounds."""
        return regression_fx(self.m, self._fit(a, node), "linreg")

    def lib_ols(self, a: dict, node: Call) -> Fx:
        """[coef (k), se (k), R^2, adjusted R^2, condition] of the same fit (t and p: the
        owner's; the condition against `condition_limit` tells whether the bounds hold)."""
        return regression_fx(self.m, self._fit(a, node), "ols")

    def lib_logit(self, a: dict, node: Call) -> Fx:
        """[b (k), gradient (k), Hessian (upper), llf, count(y)] of `analytics.logistic`
        (G bits); the owner's `logistic.logit_table` turns it into a certified table."""
        cols, secrets = self.m.model_columns(a["x"], node, FRAC)
        (y,), (ys,) = self.m.model_columns(a["y"], node, 0)
        if any(c.f > FRAC for c in cols):
            raise self.m.err(node, f"logit() of columns with more than {FRAC} fractional bits "
                                   "is not compiled yet", "round the column in the schema")
        # the owner's certificate takes each feature's storage rounding from its type (one
        # column's 2^-(f+1)): a computed feature that carries more (rr * 2, rr + stateur)
        # would make it too small, so it is refused like one with rounding
        if y.err or any(c.err or c.stored > storage.storage_rounding(c.f, c.integer)
                        for c in cols):
            raise self.m.err(node, "logit() of computed columns with rounding is not compiled "
                                   "yet", "fit columns of the data, or exact (integer) "
                                   "functions of them")
        out = logistic.logistic_regression(
            self.e, table(secrets), ys, [Range(c.lo, c.hi) for c in cols],
            intercept=bool(a.get("intercept", True)),
            iterations=int(a.get("iterations", logistic.DEFAULT_ITERATIONS)), f=FRAC)
        size = out.value.shape[0]
        return Fx(self.m, [out.value], logistic.G, -out.top, out.top, float(out.error.max()), False,
                  (size,), errs=out.error)

    def _fit(self, a: dict, node: Call) -> regression.Regression:
        cols, secrets = self.m.model_columns(a["x"], node, FRAC)
        (y,), (ys,) = self.m.model_columns(a["y"], node, FRAC)
        if y.err or any(c.err for c in cols):
            raise self.m.err(node, f"{node.func}() of computed columns with rounding is not "
                                   "compiled yet",
                             "regress columns of the data, or exact (integer) functions of them")
        return regression.linear_regression(
            self.e, table(secrets), ys, [Range(c.lo, c.hi) for c in cols], Range(y.lo, y.hi),
            intercept=bool(a.get("intercept", True)), ridge=float(a.get("ridge", 0.0)), f=FRAC,
            storage=[c.stored for c in [*cols, y]])


def pair_shift(covariance: bool, ranges: list, stored: list[float], n: int) -> float:
    """What storage rounding adds to cov (ddof 1) or corr (default floors) of two columns
    with these ranges [lo, hi] and storage roundings, of n rows."""
    (xlo, xhi), (ylo, yhi) = ranges
    if covariance:
        return storage.cov_shift((xhi - xlo) / 2, stored[0], (yhi - ylo) / 2, stored[1],
                                 storage.ddof_factor(n, 1))
    return storage.corr_shift(stored[0], (xhi - xlo) * DEFAULT_SPREAD,
                              stored[1], (yhi - ylo) * DEFAULT_SPREAD)


def regression_fx(owner: MpcBackend, fit: regression.Regression, func: str) -> Fx:
    """A fitted regression as one value, each element with its own error bound (one quorum
    and the reducing quorum of a split job alike): linreg's [intercept,] slopes; ols's
    [coef, se, R^2, adjusted R^2, condition, floored] (the intercept first among coef and
    se)."""
    d = fit.coef.value.shape[0]
    k = fit.se.value.shape[0]
    parts = [*([fit.intercept.value.reshape(1)] if k > d else []), fit.coef.value.reshape(d)]
    errs = [*([float(fit.intercept.error)] if k > d else []),
            *np.broadcast_to(fit.coef.error, (d,))]
    hi = max(fit.coef.range.magnitude, fit.intercept.range.magnitude)
    lo = -hi
    if func == "ols":
        parts += [fit.se.value.reshape(k), fit.r2.value.reshape(1), fit.adj_r2.value.reshape(1)]
        assert fit.floored is not None
        parts += [fit.condition.value.reshape(1), fit.floored.value.reshape(1)]
        errs += [*np.broadcast_to(fit.se.error, (k,)), float(fit.r2.error),
                 float(fit.adj_r2.error), float(fit.condition.error), 0.0]
        lo = min(lo, fit.adj_r2.range.lo)
        hi = max(hi, fit.se.range.hi, fit.condition.range.hi)
    errs_a = np.array(errs, dtype=np.float64)
    return Fx(owner, [concat(parts)], FRAC, lo, hi, float(errs_a.max()), False, (len(errs),),
              errs=errs_a)
