"""What a script will cost on the engine, before any real data is touched.

Measured, not modelled: the script runs through `run_mpc` (3 engines, the
real online phase, in threads of this process: `lang.simulation`) on
synthetic data drawn from the schema at two small row counts, and the
counters are extrapolated to the dataset's row count:

- volume (triples, masks, opened elements, bytes) linearly in the rows,
  which is exact for everything the library does per row (products,
  comparisons, one-hots, dot products) and slightly low for sorting
  (n log^2 n) and for bit bounds that grow with log n;
- rounds as a + b log2(rows): constant-round programs (the usual case)
  come out constant, tree reductions over rows (min, max) grow by their
  levels.

Openings of 65,536 elements or more go through a rotating king (two rounds
instead of one, a third fewer bytes for 3 parties). An opening whose size
grows with the rows crosses that threshold at some row count; the measuring
runs therefore lower the threshold by the ratio of their rows to the target
rows, so that they open through the king exactly where the full run would.

Measuring with the insecure test dealer is deliberate: the data is made up,
and the online phase costs the same whatever produced its preprocessing.
docs/compiler.md gives the measured accuracy of the extrapolation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from enigma.mpc.runner import ProviderFactory
from enigma.prep.dealer import DealerFactory

from .checker import check
from .plain import referenced_columns, synthetic_table
from .runner import run_mpc
from .schema import Schema
from .simulation import thread_quorum

KING_THRESHOLD = 1 << 16
"""The engine's default size from which an opening goes through a king."""
SMALL_ROWS = (64, 256)
"""Row counts of the two measuring runs: small enough to take seconds, large enough that
the per-row volume dominates the fixed part."""


@dataclass(frozen=True)
class Cost:
    """One party's online cost of a run (node 0; the others differ by a few bytes)."""

    rows: int
    rounds: int
    triples: int
    masks: int
    """Preprocessed random values: input, truncation and comparison masks, random bits."""
    opened: int
    """Field elements opened (each costs one element of traffic per peer, or less via a king)."""
    bytes_per_party: int

    def __str__(self) -> str:
        return (f"{self.rounds} rounds, {self.triples:,} triples, {self.masks:,} masks, "
                f"{size_text(self.bytes_per_party)} sent per party")


HE_BATCH = 16384
"""Slots of one BFV ciphertext, the HE preprocessing's batch (`prep.he.params.POLY_DEGREE`,
not imported: that package loads SEAL, which an estimate does not need)."""


@dataclass(frozen=True)
class Rates:
    """How fast a local quorum of 3 goes, per unit of a `Cost` (this 2-core machine, quiet;
    docs/compiler.md, "Time limits")."""

    setup: float
    """Seconds before the first round: processes, imports, mesh, preprocessing set-up."""
    triples: float
    """Beaver triples made per second."""
    masks: float
    """Other preprocessed values (masks, random bits) made per second."""
    round_trip: float
    """Seconds per round of communication."""
    bandwidth: float
    """Bytes sent per second by a party."""
    batch: int = 1
    """Triples and masks are made this many at a time: one triple costs a whole batch."""

    def seconds(self, cost: Cost) -> float:
        def made(n: int) -> int:
            return -(-n // self.batch) * self.batch

        return (self.setup + made(cost.triples) / self.triples + made(cost.masks) / self.masks
                + cost.rounds * self.round_trip + cost.bytes_per_party / self.bandwidth)


SECURE = Rates(setup=4.0, triples=12_000.0, masks=21_000.0, round_trip=0.005, bandwidth=50e6,
               batch=HE_BATCH)
"""Homomorphic-encryption preprocessing among the nodes: the triples and bits are nearly all
of the time (docs/mpc.md, secure path: 12,000 triples/s and 21,000 bits/s quiet), made in
batches of one ciphertext's slots. Set-up measured 2026-12-07 (`enigma script run` of a
mean and of a variance at 1,000 rows: 6.7 s and 7.0 s at load 1.6, of which one batch of
triples and one of masks about 2.1 s)."""
DEALER = Rates(setup=4.0, triples=150_000.0, masks=150_000.0, round_trip=0.005,
               bandwidth=50e6)
"""The insecure test dealer (docs/compiler.md: 1.7 M triples of k-means in 10.9 s, 0.75 M of
by_state in 9.4 s, start-up included; a mean at 1,000 rows 4.6 s at load 5)."""
MARGIN = 4.0
"""Limit / expected time: a shared 2-core machine under load made triples 1.6-4x slower
(3,000-7,700/s at load 7-12, docs/preprocessing.md)."""
MIN_LIMIT = 120.0
"""No limit below this: start-up alone varies by tens of seconds under load."""


def time_limit(cost: Cost, secure: bool = True, margin: float = MARGIN) -> float:
    """The wall-clock limit of a run of this cost: the expected time times the margin."""
    return max(MIN_LIMIT, margin * (SECURE if secure else DEALER).seconds(cost))


@dataclass(frozen=True)
class Estimate:
    """The extrapolated cost at `cost.rows`, and the two measurements it came from."""

    cost: Cost
    measured: tuple[Cost, Cost]
    dealer: bool = True
    """Whether the measuring runs used the insecure test dealer (on synthetic data only)."""

    def __str__(self) -> str:
        a, b = self.measured
        how = "with the INSECURE test dealer " if self.dealer else ""
        return (f"estimated at {self.cost.rows:,} rows: {self.cost}\n"
                f"  time: about {SECURE.seconds(self.cost):,.0f} s on the secure path "
                f"({DEALER.seconds(self.cost):,.0f} s with the test dealer); time limit "
                f"{time_limit(self.cost):,.0f} s ({time_limit(self.cost, False):,.0f} s)\n"
                f"  (measured on synthetic data {how}in a quorum of 3 at {a.rows} rows: {a};\n"
                f"   at {b.rows} rows: {b}; volume extrapolated linearly, rounds as "
                f"a + b log2 rows)")


def measure(source: str, schema: Schema, rows: int, *, filename: str = "<script>",
            provider_factory: ProviderFactory | None = None, seed: int = 0,
            target: int | None = None, quorum: Callable[..., list] = thread_quorum) -> Cost:
    """Run the script on `rows` synthetic rows in a quorum of 3 and read the counters.

    The quorum is 3 threads of this process (`simulation.thread_quorum`) unless `quorum`
    says otherwise (`mpc.runner.run_local`: 3 processes over the mesh, the same figures).

    With `target`, openings go through the king from KING_THRESHOLD * rows / target
    elements on, as they would from KING_THRESHOLD at `target` rows.
    """
    script = check(source, schema, filename)
    values = synthetic_table(schema, rows, referenced_columns(script), seed)
    factory = provider_factory or DealerFactory(b"enigma cost estimate, synthetic!",
                                                insecure=True, synthetic=True)
    king = KING_THRESHOLD if target is None else max(1, KING_THRESHOLD * rows // target)
    stats = run_mpc(source, schema, values, provider_factory=factory, filename=filename,
                    engine_kwargs={"king_threshold": king}, quorum=quorum).stats
    masks = (stats["input_masks"] + stats["trunc_masks"] + stats["digit_masks"]
             + stats["random_bits"])
    return Cost(rows, stats["rounds"], stats["triples"], masks, stats["opened"],
                stats["bytes_sent"])


def extrapolate(a: Cost, b: Cost, rows: int) -> Cost:
    """The cost at `rows` from two measurements (see the module docstring)."""
    if a.rows == b.rows:
        raise ValueError("two different row counts are needed to extrapolate")

    def linear(x: int, y: int) -> int:
        return max(0, round(x + (y - x) * (rows - a.rows) / (b.rows - a.rows)))

    def logarithmic(x: int, y: int) -> int:
        t = (math.log2(rows) - math.log2(a.rows)) / (math.log2(b.rows) - math.log2(a.rows))
        return max(0, round(x + (y - x) * t))

    return Cost(rows, logarithmic(a.rounds, b.rounds), linear(a.triples, b.triples),
                linear(a.masks, b.masks), linear(a.opened, b.opened),
                linear(a.bytes_per_party, b.bytes_per_party))


def estimate(source: str, schema: Schema, rows: int | None = None, *,
             filename: str = "<script>", provider_factory: ProviderFactory | None = None,
             sizes: tuple[int, int] = SMALL_ROWS,
             on_phase: Callable[[str, float | None], None] | None = None) -> Estimate:
    """The cost of running the script on `rows` rows (default: the schema's row count).

    `on_phase(text, expected_seconds)` is told as each measurement starts (a progress line:
    measuring takes tens of seconds); the second is expected to last about as long as the
    first, which pays the compiled kernels' warm-up that the larger size then does not."""
    target = rows if rows is not None else schema.rows
    if target is None:
        raise ValueError(f"schema {schema.name!r} gives no row count; pass rows=")
    tell = on_phase or (lambda _text, _expected: None)
    measured, took = [], None
    for i, n in enumerate(sizes):
        tell(f"measuring on {n} synthetic rows ({i + 1} of {len(sizes)})", took)
        t0 = time.monotonic()
        measured.append(measure(source, schema, n, filename=filename,
                                provider_factory=provider_factory, target=target))
        took = time.monotonic() - t0
    a, b = measured
    return Estimate(extrapolate(a, b, target), (a, b), dealer=provider_factory is None)


def size_text(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
