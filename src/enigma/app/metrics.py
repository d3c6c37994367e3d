"""A node's health and Prometheus metrics on a local HTTP port.

`GET /metrics` is the Prometheus text format (prometheus-client); `GET /health` is JSON
that says whether the node serves requests (200) or is starting or stopping (503), for a
process supervisor or a load balancer. Why a small server of our own around the
client's `generate_latest` and not `prometheus_client.start_http_server`: the latter
answers every path with metrics and has no health endpoint and no clean stop.

Each node has its own registry, not the process-global one, so that several nodes in
one test process do not mix their counts. Metrics are counts and sizes only: never a
value, a share or a key.

Names follow Prometheus' conventions: `enigma_node_` then what is measured, its unit
(`_seconds`, `_bytes`) and, for counters, `_total` (prometheus-client appends it); so
`enigma_node_jobs_total{role,outcome}`, `enigma_node_job_phase_seconds{phase}` (a
histogram: a dashboard plots its quantiles), `enigma_node_prep_stock{kind}` (triples,
bits and input masks in this node's stock files, read when scraped) and
`enigma_node_mpc_sent_bytes_total`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PHASE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
"""Seconds: from a ledger read to an HE session of many minutes."""


class NodeMetrics:
    """The counters a node keeps; names are prefixed `enigma_node_`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("enigma_node_requests", "Service requests answered, by operation "
                                "and outcome", ["op", "outcome"], registry=r)
        self.bytes_received = Counter("enigma_node_share_received_bytes",
                                      "Share bytes received and stored", registry=r)
        self.bytes_served = Counter("enigma_node_share_served_bytes",
                                    "Share bytes sent to owners or to new holders", registry=r)
        self.columns_stored = Counter("enigma_node_share_columns_stored",
                                      "Share columns written durably", registry=r)
        self.corrupt = Counter("enigma_node_corrupt_reads",
                               "Reads that failed a checksum (file rotted or was altered)",
                               registry=r)
        self.datasets = Gauge("enigma_node_datasets", "Datasets held (sealed)", registry=r)
        self.connections = Gauge("enigma_node_connections", "Open service connections",
                                 registry=r)
        self.purged = Counter("enigma_node_datasets_purged",
                              "Datasets deleted because their paid storage expired", registry=r)
        self.jobs = Counter("enigma_node_jobs", "Jobs run as a quorum member, by role (single, "
                            "map, reduce) and outcome (ok, refused, failed)",
                            ["role", "outcome"], registry=r)
        self.job_phase = Histogram("enigma_node_job_phase_seconds", "Seconds a job spent in "
                                   "each phase on this node (read_shares, mesh, he_session, "
                                   "online, commit, ...)", ["phase"], buckets=PHASE_BUCKETS,
                                   registry=r)
        self.mpc_sent = Counter("enigma_node_mpc_sent_bytes",
                                "Bytes sent to quorum peers in jobs' online phases", registry=r)

    def job_done(self, role: str, outcome: str, phases: dict[str, float] | None = None,
                 sent_bytes: int = 0) -> None:
        """Count one job and observe how long each of its phases took."""
        self.jobs.labels(role, outcome).inc()
        for phase, seconds in (phases or {}).items():
            self.job_phase.labels(phase).observe(seconds)
        self.mpc_sent.inc(sent_bytes)

    def watch_stock(self, totals: Callable[[], dict[str, int]]) -> None:
        """Publish `totals()` (kind -> units in stock) as `enigma_node_prep_stock`, read
        at each scrape: stock files change under the node's feet (top-ups, `node prep`)."""
        self.registry.register(_StockCollector(totals))


class _StockCollector(Collector):
    def __init__(self, totals: Callable[[], dict[str, int]]) -> None:
        self.totals = totals

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("enigma_node_prep_stock", "Preprocessing material in this "
                                   "node's stock files, by kind (triples, bits, inputs)",
                                   labels=["kind"])
        for kind, units in sorted(self.totals().items()):
            family.add_metric([kind], units)
        yield family


#: Seconds one client connection may last in all (request, answer): a silent or trickling
#: client must not hold a thread forever. A scrape takes milliseconds.
HTTP_TIMEOUT = 10.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client cut off at its deadline or gone is its business: no traceback."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class MetricsServer:
    """Serves /metrics and /health until `stop`; `port` is the bound port."""

    def __init__(self, metrics: NodeMetrics, health: Callable[[], tuple[bool, dict[str, Any]]],
                 host: str = "127.0.0.1", port: int = 0, timeout: float = HTTP_TIMEOUT) -> None:
        registry = metrics.registry
        client_timeout = timeout

        class Handler(BaseHTTPRequestHandler):
            timeout = client_timeout  # per read and write on the client's socket

            def setup(self) -> None:
                """Start the connection's deadline: then its socket is shut down, which ends
                any read or write in progress (a per-read timeout alone lets a client that
                trickles one byte at a time stay forever)."""
                super().setup()
                self._deadline = threading.Timer(client_timeout, self._cut_off)
                self._deadline.daemon = True
                self._deadline.start()

            def _cut_off(self) -> None:
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            def finish(self) -> None:
                self._deadline.cancel()
                super().finish()

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    status, body, kind = 200, generate_latest(registry), CONTENT_TYPE_LATEST
                elif self.path == "/health":
                    ok, facts = health()
                    status, kind = (200 if ok else 503), "application/json"
                    body = json.dumps({"status": "ok" if ok else "unavailable", **facts}).encode()
                else:
                    status, body, kind = 404, b"try /metrics or /health\n", "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Requests are not logged: a scraper every few seconds would flood the log."""

        self._httpd = _Server((host, port), Handler)
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="node-metrics",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
