"""The soak (`app/chaos.py`): one of each fault around a job, the invariants after each step."""

from __future__ import annotations

from enigma.app import chaos


def test_jobs_under_kills_restarts_pauses_corruption_and_strangers_keep_every_promise(tmp_path):
    def check(report: chaos.Report) -> None:
        step = report.steps[-1]
        assert report.wrong_results == 0, step
        assert report.honest_suspended == 0, step
        assert report.stuck_escrow == 0, step
        assert report.max_rss_mb <= report.rss_budget_mb, step

    report = chaos.run(tmp_path, len(chaos.FAULTS), nodes=5, check=check)
    assert report.jobs == report.faults == len(chaos.FAULTS) and report.ok
    assert [s["fault"] for s in report.steps] == list(chaos.FAULTS)
    assert report.refunded <= 1  # five nodes: a re-run always finds a quorum of three
