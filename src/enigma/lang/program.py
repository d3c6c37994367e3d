"""The member program and the owner's decoder, the same for a local run and a network job.

A member turns MAC'd input columns into sealed result shares (`run_member`); the owner
turns every member's sealed shares and the public facts they state into values with error
bounds (`decode_results`). `lang.runner` (`enigma script run`, q processes on one machine)
and the node's job service (`app.member`) both call these two, so what a local run shows
is what a network job would deliver, range checks included.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from enigma.field import Field
from enigma.mpc import client
from enigma.mpc.engine import Engine
from enigma.mpc.secret import Secret

from .budget import Budget
from .disclosure import track
from .interpreter import Revealed, run
from .mpc_backend import MpcBackend
from .reduction import CHECK_NAME
from .release import Release

Columns = dict[str, tuple[Secret, tuple[int, float, float, bool]]]
"""Private columns as MAC'd secrets with (fractional bits, lo, hi, integer-valued)."""


def run_member(e: Engine, script: Any, columns: Columns, public: dict[str, np.ndarray],
               rows: int, key: Secret, filename: str, budget: Budget | None = None,
               release: Release | None = None) -> dict[str, Any]:
    """One member's run of a checked script on MAC'd columns: the script runs on
    `MpcBackend`; revealed values are sealed under the owner's key [k] after the
    quorum's MAC check (`mpc.client.seal_output`). Under a `release` policy, a cell that
    fails it is never sealed (docs/disclosure.md)."""
    backend = MpcBackend(e, columns, public, rows, key, filename)
    outcome = run(script, track(backend, release), budget=budget)
    return member_reply(e, backend, outcome.printed)


def member_reply(e: Engine, backend: MpcBackend, printed: list[str]) -> dict[str, Any]:
    """What a member returns: its sealed shares and the public layout and counters.

    The public facts go through JSON once, so what a member commits to is exactly what
    the owner will decode."""
    sealed = backend.sealed or (np.zeros((0, 2), np.uint64), np.zeros((0, 2), np.uint64))
    layout = [[name, [int(n) for n in shape], int(f),
               np.asarray(err, dtype=np.float64).tolist(), _bound(lo), _bound(hi), *facts]
              for name, shape, f, err, lo, hi, *facts in backend.layout]
    stats = dict(rounds=e.stats.rounds, bytes_sent=e.stats.bytes_sent, opened=e.stats.opened,
                 triples=e.stats.triples, mac_checks=e.stats.mac_checks)
    public = json.loads(json.dumps(dict(
        layout=layout, exact={k: np.asarray(v).tolist() for k, v in backend.exact.items()},
        printed=list(printed))))
    return dict(sealed=sealed, **public, stats=stats)


def _cells(values: list | None, shape: list[int], dtype: Any) -> np.ndarray | None:
    """A per-cell fact of the layout in the value's shape (None when the layout has none)."""
    return None if values is None else np.asarray(values, dtype=dtype).reshape(shape)


def _bound(v: float) -> float | None:
    """A range end for JSON: None where the range is unbounded."""
    return float(v) if np.isfinite(v) else None


class OutOfRangeError(ValueError):
    """A decoded result lies outside what the schema and the script allow for it."""


def check_range(name: str, value: np.ndarray, err: np.ndarray, lo: float | None,
                hi: float | None) -> None:
    """The owner's second line of defence: every value within the range the compiler
    derived for it from the schema (interval arithmetic, public), widened by its error
    bound. A count above the row count, a mean outside [min, max] or a negative variance
    cannot come from the stored data, so the result is refused, naming value and bound.

    Why it is sound: the ranges are what the engine already relies on to size every
    comparison and truncation; a result outside them means the computation went wrong."""
    slack = np.abs(err) + 1e-9 * (1.0 + np.abs(value))
    below = np.zeros(value.shape, bool) if lo is None else value < lo - slack
    above = np.zeros(value.shape, bool) if hi is None else value > hi + slack
    bad = below | above
    if np.any(bad):
        i = np.flatnonzero(bad.reshape(-1))[0]
        v = float(value.reshape(-1)[i])
        where = f"[{i}]" if value.ndim else ""
        raise OutOfRangeError(f"result {name!r}{where} = {v:.6g} is outside the range the "
                              f"schema and the script allow, [{lo}, {hi}] (error bound "
                              f"{float(np.max(err)):.3g}); the result is refused")


def decode_results(F: Field, key: np.ndarray, sealed: list[tuple[np.ndarray, np.ndarray]],
                   reply: dict[str, Any]) -> dict[str, Revealed]:
    """The owner's values: recombine and check the sealed shares, then undo each scale."""
    results: dict[str, Revealed] = {}
    if reply["layout"]:
        opened = client.open_output(F, key, sealed)
        start = 0
        for name, shape, f, err, lo, hi, *facts in reply["layout"]:
            size = int(np.prod(shape, dtype=np.int64))
            kept = np.ones(size, dtype=bool) if not facts else \
                np.asarray(facts[0]["kept"], dtype=bool).reshape(size)
            part = np.full(size, np.nan)
            part[kept] = F.to_float(opened[start:start + int(kept.sum())]) / float(1 << f)
            bound = np.asarray(err, dtype=np.float64)
            value = part.reshape(shape)
            if not name.startswith(CHECK_NAME):  # zero by design, checked by the caller
                inside = lo if lo is not None else (hi if hi is not None else 0.0)
                check_range(name, np.where(kept.reshape(shape), value, inside),  # withheld:
                            np.where(kept.reshape(shape), bound, 0.0), lo, hi)  # no value
            results[name] = Revealed(value, float(bound) if bound.ndim == 0 else bound)
            if facts:
                results[name].suppressed = _cells(facts[0]["reasons"], shape, object)
                results[name].noise = _cells(facts[0]["scale"], shape, np.float64)
                results[name].noise_bound = _cells(facts[0]["bound"], shape, np.float64)
                if facts[0]["scale"] is not None:
                    results[name].delta = float(facts[0].get("delta", 0.0))
            start += int(kept.sum())
    for name, value in reply["exact"].items():
        results[name] = Revealed(np.asarray(value, dtype=np.float64), 0.0)
    return results
