"""Kill -9 at random moments while a process writes shares: nothing half-written is ever read.

A writer process overwrites 4 chunks x 2 columns in a loop, each generation with different
contents and its generation number in the header meta. After its first full generation the
test kills it with SIGKILL at a seeded random moment 0-300 ms later, five times over; after
each kill it opens the store (which sweeps temporary files) and checks that every column
present holds exactly the data of the generation its header names.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from enigma.storage.store import ShareStore

ROWS = 40_000
CHUNKS = 4
COLUMNS = ("a", "b")

WRITER = f"""
import sys
import numpy as np
from enigma.storage.store import ShareStore

def expected(chunk, column, gen):
    base = np.arange({ROWS} * 2, dtype=np.uint64).reshape({ROWS}, 2)
    return base * np.uint64(gen) + np.uint64(chunk * 1000 + ord(column))

store = ShareStore(sys.argv[1])
gen = int(sys.argv[2])
while True:
    gen += 1
    for chunk in range({CHUNKS}):
        for column in {COLUMNS!r}:
            store.put("ds", chunk, column, expected(chunk, column, gen), meta={{"gen": gen}})
    print(gen, flush=True)
"""


def expected(chunk: int, column: str, gen: int) -> np.ndarray:
    base = np.arange(ROWS * 2, dtype=np.uint64).reshape(ROWS, 2)
    return base * np.uint64(gen) + np.uint64(chunk * 1000 + ord(column))


def _kill_writer_at_random(root: Path, first_gen: int, delay: float) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(first_gen)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == str(first_gen + 1)  # one full generation
        time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_at_random_moments_never_leaves_a_readable_torn_file(tmp_path: Path) -> None:
    root = tmp_path / "store"
    rng = random.Random(20261125)
    seen_gens: set[int] = set()
    leftovers = 0
    for round_ in range(5):
        _kill_writer_at_random(root, round_ * 10_000, rng.uniform(0.0, 0.3))
        leftovers += sum(1 for p in root.rglob("*") if p.name.startswith(".tmp."))
        with ShareStore(root) as store:
            assert not [p for p in root.rglob("*") if p.name.startswith(".tmp.")]
            for chunk in store.chunks("ds"):
                for column in store.columns("ds", chunk):
                    assert column in COLUMNS
                    gen = store.header("ds", chunk, column).meta["gen"]
                    np.testing.assert_array_equal(store.get("ds", chunk, column),
                                                  expected(chunk, column, gen))
                    seen_gens.add(gen)
    # Every round's writer completed a generation before its kill, so each check saw
    # replacements made by that round.
    assert {g // 10_000 for g in seen_gens} == set(range(5))
    print(f"temporary files found after kills: {leftovers}")
