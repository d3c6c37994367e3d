"""`enigma store ...`: listing, scrubbing and purging a node's share store from the shell."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from enigma.storage.commands import store
from enigma.storage.store import ShareStore


def _fill(root: Path) -> Path:
    with ShareStore(root) as s:
        for ds, expiry in [("old", 1000.0), ("live", 4e9)]:
            for chunk in range(2):
                for col in ("age", "pay"):
                    s.put(ds, chunk, col, np.full((4, 2), chunk, dtype=np.uint64))
            s.write_manifest(ds, b"\0" * 32, expiry, 2)
        return s.path("live", 1, "pay")


def test_ls_verify_purge(tmp_path: Path) -> None:
    victim = _fill(tmp_path)
    runner = CliRunner()
    listing = runner.invoke(store, ["ls", str(tmp_path)])
    assert listing.exit_code == 0
    assert re.search(r"live\t2 chunks\texpires 2096-.*\tage,pay", listing.output)
    assert "old\t2 chunks\texpires 1970-01-01 00:16" in listing.output
    assert runner.invoke(store, ["verify", str(tmp_path)]).exit_code == 0
    raw = bytearray(victim.read_bytes())
    raw[-1] ^= 0xFF
    victim.write_bytes(bytes(raw))
    broken = runner.invoke(store, ["verify", str(tmp_path)])
    assert broken.exit_code == 1
    assert str(victim) in broken.output and "chunk 1" in broken.output
    purged = runner.invoke(store, ["purge", str(tmp_path)])
    assert purged.exit_code == 0 and "['old']" in purged.output
    with ShareStore(tmp_path) as s:
        assert s.datasets() == ["live"]


def test_bench_reports_throughput(tmp_path: Path) -> None:
    result = CliRunner().invoke(store, ["bench", "--rows", "1000", "--columns", "2",
                                        "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert re.search(r"write \d+ MB/s, read\+check \d+ MB/s", result.output)
    assert list(tmp_path.iterdir()) == []
