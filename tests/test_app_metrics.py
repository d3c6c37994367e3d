"""A node's /metrics and /health (app/metrics.py): Prometheus names, the job counters and
phase latencies, and the preprocessing stock read from the stock files when scraped."""

from __future__ import annotations

import re
import urllib.request

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from enigma.app.metrics import MetricsServer, NodeMetrics
from enigma.app.stock import QuorumStocks, quorum_id
from enigma.field import Field
from enigma.prep.commands import save_stock
from enigma.prep.provider import Stock

MEMBERS = ["0x" + f"{i:040x}" for i in (1, 2, 3)]


def _scrape(metrics: NodeMetrics) -> dict[tuple[str, tuple], float]:
    """Every sample a scrape returns, by name and sorted labels (over real HTTP)."""
    server = MetricsServer(metrics, lambda: (True, {}))
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics",
                                      timeout=10).read().decode()
    finally:
        server.stop()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_names_follow_prometheus_conventions() -> None:
    samples = _scrape(NodeMetrics())
    for name, _ in samples:
        assert name.startswith("enigma_node_"), name
        if "bytes" in name:  # the unit last, before a counter's _total
            assert re.search(r"_bytes(_total|_created)?$", name), name
    assert ("enigma_node_share_received_bytes_total", ()) in samples
    assert ("enigma_node_mpc_sent_bytes_total", ()) in samples


def test_a_job_is_counted_with_its_phases_and_bytes() -> None:
    metrics = NodeMetrics()
    metrics.job_done("single", "ok", {"read_shares": 0.2, "mesh": 0.03, "online": 4.0}, 5000)
    metrics.job_done("single", "ok", {"read_shares": 0.4}, 1000)
    metrics.job_done("map", "refused")
    got = _scrape(metrics)
    assert got[("enigma_node_jobs_total", (("outcome", "ok"), ("role", "single")))] == 2
    assert got[("enigma_node_jobs_total", (("outcome", "refused"), ("role", "map")))] == 1
    assert got[("enigma_node_job_phase_seconds_count", (("phase", "read_shares"),))] == 2
    assert abs(got[("enigma_node_job_phase_seconds_sum", (("phase", "read_shares"),))]
               - 0.6) < 1e-9
    assert got[("enigma_node_job_phase_seconds_bucket",
                (("le", "5.0"), ("phase", "online")))] == 1
    assert got[("enigma_node_mpc_sent_bytes_total", ())] == 6000


def test_the_stock_is_read_from_the_files_at_each_scrape(tmp_path) -> None:
    field = Field()
    stocks = QuorumStocks(tmp_path, field)
    metrics = NodeMetrics()
    metrics.watch_stock(stocks.totals)
    assert _scrape(metrics)[("enigma_node_prep_stock", (("kind", "triples"),))] == 0
    stocks.dir.mkdir()
    for members, triples, bits in ((MEMBERS, 7, 3), (MEMBERS[:2], 5, 0)):
        stock = Stock(b"\x07" * 32, np.array([5, 0], dtype=np.uint64),
                      tuple(field.random(triples) for _ in range(6)),
                      tuple(field.random(bits) for _ in range(2)))
        qid = quorum_id(members, field.p)
        save_stock(stock, stocks.path(qid), field, 0, len(members), qid)
    (stocks.dir / "broken.stock").write_bytes(b"not a stock")
    got = _scrape(metrics)
    assert got[("enigma_node_prep_stock", (("kind", "triples"),))] == 12
    assert got[("enigma_node_prep_stock", (("kind", "bits"),))] == 3
