"""Results as the owner reads them: named, labelled, with the error bound beside each value.

Three readers, one source of labels: the terminal (`text`), programs (`as_json`, what
`--json` prints) and notebooks (`frame`, `table`: pandas objects indexed by the group
names, bins or terms). The labels are the `axes` the owner's own check of the script put
on each result (`labelled`), never anything a node sent: a node that changed a result's
shape is caught here, before a label could sit on the wrong number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .interpreter import Revealed
from .syntax import Script, ValueType

if TYPE_CHECKING:
    import pandas as pd

ERROR = "error"
"""The column of a result's frame holding its bound; `NAME_error` beside NAME in a table."""
REASON = "reason"
"""Under a release policy: why a cell was withheld ("" where it was released)."""
NOISE = "noise_scale"
BOUND95 = "noise_95"
"""Under differential privacy: the noise's scale, and the bound |noise| stays within at 95%."""


def _release_columns(r: Revealed) -> dict[str, Any]:
    """The release facts of a result as frame columns, flat in the value's order."""
    out: dict[str, Any] = {}
    if r.suppressed is not None:
        out[REASON] = list(r.suppressed.reshape(-1))
    if r.noise is not None:
        out[NOISE] = list(r.noise.reshape(-1))
        out[BOUND95] = list(r.noise_bound.reshape(-1)) if r.noise_bound is not None else None
    return out


class ResultShapeError(ValueError):
    """A decoded result whose shape is not the one the script gives it."""


def labelled(script: Script, results: Mapping[str, Revealed]) -> dict[str, Revealed]:
    """`results` in the script's reveal order, each with the names of its dimensions."""
    out: dict[str, Revealed] = {}
    for o in script.outputs:
        r = results.get(o.name)
        if r is None:
            continue
        axes = o.type.axes if isinstance(o.type, ValueType) else ()
        if axes and r.value.shape != tuple(len(a.labels) for a in axes):
            raise ResultShapeError(f"result {o.name!r} came back with shape {r.value.shape}, "
                                   f"but the script gives it {len(axes)} dimension(s) of "
                                   f"{[len(a.labels) for a in axes]}: not accepted")
        out[o.name] = replace(r, axes=axes)
    return out


def _index(r: Revealed) -> pd.Index:
    import pandas as pd

    if not r.axes:
        if r.value.ndim <= 1:
            return pd.RangeIndex(r.value.size)
        return pd.MultiIndex.from_product([range(d) for d in r.value.shape])
    if len(r.axes) == 1:
        return pd.Index(r.axes[0].labels, name=r.axes[0].name)
    return pd.MultiIndex.from_product([a.labels for a in r.axes],
                                      names=[a.name for a in r.axes])


def frame(r: Revealed, name: str = "value") -> pd.DataFrame:
    """One result as a DataFrame: a row per element, indexed by its labels (a MultiIndex
    for a matrix), columns `name` and `error`. A scalar is one row indexed by `name`."""
    import pandas as pd

    extra = _release_columns(r)
    if r.value.ndim == 0:
        return pd.DataFrame({name: [r.value.item()], ERROR: [r.error.item()], **extra},
                            index=pd.Index([name], name="result"))
    return pd.DataFrame({name: r.value.reshape(-1), ERROR: r.error.reshape(-1), **extra},
                        index=_index(r))


def table(results: Mapping[str, Revealed], names: Iterable[str] | None = None
          ) -> pd.DataFrame:
    """Several results side by side, each with its bound: `NAME` and `NAME_error` columns.

    Results of one shape and the same labels share the rows (the three group-bys of
    examples/by_state.py give one row per state); scalars give one row per result, with
    columns `value` and `error`. Results of different shapes do not fit one table: ask for
    them by `names`, or one at a time with `frame`.
    """
    import pandas as pd

    chosen = list(results) if names is None else list(names)
    missing = [n for n in chosen if n not in results]
    if missing:
        raise KeyError(f"no result named {missing[0]!r}; the results are {list(results)}")
    picked = [results[n] for n in chosen]
    if all(r.value.ndim == 0 for r in picked):
        return pd.concat([frame(r, n).rename(columns={n: "value"})
                          for n, r in zip(chosen, picked, strict=True)])
    kinds = {(r.value.shape, r.axes) for r in picked}
    if len(kinds) != 1:
        shapes = ", ".join(f"{n} {r.value.shape}" for n, r in zip(chosen, picked, strict=True))
        raise ValueError(f"these results differ in shape or labels ({shapes}); give names= "
                         "of results that share them, or use frame() for each")
    return pd.concat([frame(r, n).rename(columns={ERROR: f"{n}_{ERROR}"})
                      for n, r in zip(chosen, picked, strict=True)], axis=1)


def as_json(r: Revealed) -> dict[str, Any]:
    """One result for `--json`: value and error (nested lists for arrays), and for each
    dimension its name and labels."""
    value = np.where(np.isnan(r.value), None, r.value.astype(object)) \
        if r.suppressed is not None else r.value
    out: dict[str, Any] = {"value": value.tolist(), ERROR: r.error.tolist()}
    if r.suppressed is not None:
        out["suppressed"] = r.suppressed.tolist()
    if r.noise is not None:
        out[NOISE] = r.noise.tolist()
        out[BOUND95] = None if r.noise_bound is None else r.noise_bound.tolist()
        out["delta"] = r.delta
    if r.detail:
        out["test"], out["detail"] = r.test, r.detail
    if r.value.ndim:
        out["shape"] = list(r.value.shape)
        out["axes"] = [{"name": a.name, "labels": list(a.labels)} for a in r.axes]
    return out


def text(name: str, r: Revealed) -> str:
    """One result for a terminal: a test's labelled statistics on one line; a scalar on one
    line; an array as a labelled table."""
    if r.detail:
        return f"{name} ({r.test}): " + ", ".join(
            f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}"
            for k, v in r.detail.items())
    if r.value.ndim == 0:
        if r.suppressed is not None and r.suppressed.item():
            return f"{name}: {r.suppressed.item()}"
        noise = "" if r.noise is None else \
            f"; noise scale {r.noise.item():.3g}, within ±{r.noise_bound.item():.3g} at 95%" + \
            ("" if r.delta is None else f", δ {r.delta:.2g}")
        return f"{name} = {r.value.item():.6g}  (error <= {r.error.item():.2g}{noise})"
    by = f" by {' x '.join(a.name for a in r.axes)}" if r.axes else ""
    body = frame(r, name).to_string(float_format=lambda v: f"{v:.6g}")
    return f"{name}{by} (largest error {float(r.error.max()):.2g}):\n" + \
        "\n".join("  " + line for line in body.splitlines())

