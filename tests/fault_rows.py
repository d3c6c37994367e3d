"""What every row of the fault matrix must show, shared by the matrix's two test modules
(test_app_faults: the engine's faults on the test dealer; test_app_faults_he: a member's
lies on HE), each of which stands up a network of its own so they can run side by side."""

from __future__ import annotations

from enigma.app.faults import KEYS, Row

ABSENCE = ("dropout", "stall")


def caught(row: Row, kind: str) -> None:
    """Detected, the culprit named, the honest nodes whole, the re-run's result right."""
    assert list(row.as_json()) == list(KEYS)
    assert row.detected, row.note
    assert row.identified, f"{kind}: the owner named someone else ({row.verdict})"
    assert row.honest_loss_wei == 0
    assert row.result_correct or row.refunded
    assert not row.refunded  # two honest holders remain: the re-run must finish
    if kind in ABSENCE:
        assert row.verdict == "absent" and not row.slashed  # attested, never slashed
    else:
        assert row.verdict in ("deviation", "result", "inputs") and row.slashed
