"""Storage thresholds that match the quorum a dataset is shared for, without a network.

Any t holders learn nothing and any t + 1 read the data, so a job on a quorum of q is safe
against q - 1 colluding members only if t >= q - 1. The same on a real network (a quorum
too large refused before posting, `enigma status` marking weak data) is in
tests/test_app_e2e.py.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from enigma.app.job_facts import JobError
from enigma.app.network import status_command
from enigma.app.orchestration import run_job
from enigma.app.owner import DatasetState, Holder, Owner, threshold
from enigma.app.owner_commands import share_command
from enigma.app.upload import UploadError
from enigma.lang.schema import Schema
from enigma.ledger.records import ReleaseRecord
from enigma.net.identity import Identity

SCHEMA = {"name": "d", "columns": [{"name": "a", "type": "int", "min": 0, "max": 10}]}
WEAK = ("t=1 lets any 2 holders read the data, fewer than a quorum of 3; pass weak=True / "
        "--weak-threshold to accept that")


def test_defaults_leave_the_data_to_a_whole_quorum_and_survive_one_lost_holder():
    s = threshold()
    assert (s.t, s.n, s.quorum, s.weak, s.warnings) == (2, 4, 3, False, ())
    assert (threshold(5).t, threshold(5).n) == (4, 6)
    named = threshold(3, holders=3)  # the owner names 3 holders: n = 3 = t + 1
    assert (named.t, named.n) == (2, 3) and "no node may be lost" in named.warnings[0]
    assert threshold(2, n=2).warnings  # t = 1, n = 2: allowed, with the warning


def test_a_weak_threshold_needs_the_flag_and_is_recorded():
    with pytest.raises(UploadError) as refused:
        threshold(3, t=1)
    assert str(refused.value) == WEAK
    s = threshold(3, t=1, weak=True)
    assert (s.t, s.n, s.weak) == (1, 3, True)
    assert threshold(3, t=2, weak=True).weak is False  # the flag alone does not weaken
    with pytest.raises(UploadError, match="t=3 needs t \\+ 1 = 4 members in every quorum"):
        threshold(3, t=3)  # no quorum of 3 could compute on it
    with pytest.raises(UploadError, match="n=2 are too few"):
        threshold(3, t=1, n=2, weak=True)  # quorums are drawn among the holders


def test_share_refuses_a_weak_threshold_before_touching_the_network(tmp_path):
    owner = Owner(Identity.generate(), None, tmp_path)  # type: ignore[arg-type]  # no ledger
    with pytest.raises(UploadError) as refused:
        owner.share({"a": [1, 2]}, Schema.from_dict(SCHEMA), "d", t=1)
    assert str(refused.value) == WEAK
    assert not (tmp_path / "datasets").exists()


def test_the_command_line_refuses_a_weak_threshold_without_the_flag(tmp_path):
    (tmp_path / "d.csv").write_text("a\n1\n2\n")
    (tmp_path / "d.yaml").write_text(Schema.from_dict(SCHEMA).dumps())
    (tmp_path / "deployment.json").write_text("{}")
    args = ["--schema", str(tmp_path / "d.yaml"), "--home", str(tmp_path / "owner"),
            "--deployment", str(tmp_path / "deployment.json"), "--account", "0x" + "1" * 40]
    got = CliRunner().invoke(share_command, [str(tmp_path / "d.csv"), "-t", "1", *args])
    assert got.exit_code == 1 and "pass weak=True / --weak-threshold" in got.output
    got = CliRunner().invoke(share_command, [str(tmp_path / "d.csv"), "--quorum", "4",
                                             "-t", "2", *args])
    assert got.exit_code == 1 and "any 3 holders read the data, fewer than a quorum of 4" \
        in got.output
    assert not (tmp_path / "owner").exists()  # refused before the owner's key or the ledger


def _state(t: int, n: int, **kw: object) -> DatasetState:
    holders = [Holder(j, f"0x{j:040x}", "00" * 32, "127.0.0.1", 1) for j in range(1, n + 1)]
    return DatasetState("d", 0, t, 1024, SCHEMA, "x", holders, {}, 1, 2, ledger_id=7,
                        sealed=True, **kw)


def test_progress_files_from_before_quorums_were_recorded_still_load(tmp_path):
    _state(1, 3, quorum=3, weak=True).save(tmp_path / "d.json")
    body = json.loads((tmp_path / "d.json").read_text())
    del body["quorum"], body["weak"]
    (tmp_path / "d.json").write_text(json.dumps(body))
    old = DatasetState.load(tmp_path / "d.json")
    assert old is not None and (old.t, old.quorum, old.weak) == (1, 2, False)


class _Ledger:
    """The one ledger read run_job makes before its checks: the dataset has no release
    policy (the record the contract returns for none)."""

    def release(self, dataset_id: int) -> ReleaseRecord:
        return ReleaseRecord(dataset_id, 0, 0, 0, 0, 0, 0, 0)


class _Owner:
    """Just enough of an Owner for run_job's checks before anything is posted."""

    def __init__(self, state: DatasetState) -> None:
        self._state = state
        self.ledger = _Ledger()

    def state(self, name: str) -> DatasetState:
        return self._state


def test_run_job_refuses_a_quorum_the_threshold_does_not_cover():
    owner = _Owner(_state(2, 4, quorum=3))
    source = "reveal(sum(data.a), 'total')\n"
    with pytest.raises(JobError, match="a job on a quorum of 4 is meant to resist 3 colluding "
                                       "members, but any 3 of its 4 holders can read 'd'"):
        run_job(owner, "d", source, quorum_size=4)  # type: ignore[arg-type]
    with pytest.raises(JobError, match="a quorum of 2 cannot compute on 'd'"):
        run_job(owner, "d", source, quorum_size=2)  # type: ignore[arg-type]


def test_a_job_on_weak_data_runs_and_says_so():
    owner = _Owner(_state(1, 3, quorum=3, weak=True))
    said: list[str] = []
    with pytest.raises(JobError, match="give the author"):  # past the threshold check
        run_job(owner, "d", "reveal(sum(data.a), 'total')\n",  # type: ignore[arg-type]
                progress=said.append)
    assert said == ["WARNING: 'd' was shared with a weak threshold: any 2 of its 3 holders "
                    "can read 'd' (t = 1), fewer than this quorum of 3"]


def test_status_marks_weak_datasets(monkeypatch):
    dataset = {"id": 0, "owner": "0xowner", "holders": 3, "expires_at": 0,
               "policy": "owner-only", "name": "d", "t": 1, "n": 3, "quorum": 3,
               "weak": True, "threshold_from": "progress file"}
    report = {"rpc": "http://chain", "nodes": [], "jobs": [], "datasets": [
        dataset, {**dataset, "id": 1, "name": "e", "t": 2, "weak": False},
        {**dataset, "id": 2, "name": None, "t": None}]}
    monkeypatch.setattr("enigma.app.network.status", lambda home: report)
    lines = CliRunner().invoke(status_command, []).output.splitlines()
    assert lines[1].endswith("d: t=1 n=3 for quorums of 3 WEAK: any t+1 = 2 holders can read "
                             "it, fewer than a quorum of 3")
    assert lines[2].endswith("e: t=2 n=3 for quorums of 3")
    assert lines[3].endswith("threshold unknown (no progress file under --home, no DHT record)")
