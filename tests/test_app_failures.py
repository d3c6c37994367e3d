"""Blame only with evidence, bounded jobs, cancel: failures a member meets at any step.

The unit tests judge hand-made signed records; the network tests run the failures an
operator met on a live network (a runaway script, a script over its budget, a cancel, a
Ctrl-C, a flipped byte in a share file, a member killed mid-job) and check after each:
nobody honest suspended, the job refunded or re-run to the right result, no escrow left
open.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner

from enigma.app.budget import Guard, JobBudget
from enigma.app.failures import Judgement, classify, judge, sign_record, verified
from enigma.app.home import store_name
from enigma.app.job_facts import JobCancelled, JobError
from enigma.app.localnet import cluster
from enigma.app.node import node_command
from enigma.app.orchestration import cancel_job, run_job, sign_script
from enigma.lang.schema import Schema
from enigma.ledger import JobStatus, script_hash
from enigma.ledger.devchain import advance_time
from enigma.mpc.blame import encode_abort
from enigma.net.errors import PeerDisconnected, PeerTimeout, SetupStopped
from enigma.net.identity import Identity
from enigma.storage.container import CorruptShareError

ROOT = Path(__file__).resolve().parents[1]
ROWS = 240
SESSION = b"s" * 32


# ------------------------------------------------------------------------- the judgement


def _rec(ids: list[Identity], party: int, reason: str, peer: int | None = None):
    return sign_record(ids[party], SESSION, party, reason, peer, f"{reason} at {party}")


@pytest.fixture(scope="module")
def ids() -> list[Identity]:
    return [Identity.generate() for _ in range(4)]


def test_a_record_is_verified_against_its_members_key_session_and_place(ids) -> None:
    raw = encode_abort(_rec(ids, 1, "store"))
    assert verified(raw, SESSION, 1, ids[1].public_key) is not None
    assert verified(raw, SESSION, 2, ids[1].public_key) is None  # another member's place
    assert verified(raw, b"t" * 32, 1, ids[1].public_key) is None  # another job
    assert verified(raw, SESSION, 1, ids[2].public_key) is None  # signed by someone else
    assert verified(raw[:-3], SESSION, 1, ids[1].public_key) is None  # truncated
    assert verified(b"garbage", SESSION, 1, ids[1].public_key) is None


def test_a_script_over_its_budget_names_nobody_whatever_the_echoes(ids) -> None:
    records = {0: _rec(ids, 0, "memory"), 1: _rec(ids, 1, "disconnect", 0),
               2: _rec(ids, 2, "disconnect", 0)}
    got = judge(records, 3, silent=[], withheld=[])
    assert got.kind == "script" and not got.blames


def test_a_damaged_store_names_its_holder_not_the_peers_that_waited_for_it(ids) -> None:
    records = {1: _rec(ids, 1, "store"), 0: _rec(ids, 0, "timeout", 1),
               2: _rec(ids, 2, "cancelled")}
    got = judge(records, 3, silent=[])
    assert (got.kind, got.party) == ("self", 1) and got.before_absence


def test_a_member_that_vanished_is_named_by_the_others_and_cancel_echoes_are_ignored(ids):
    records = {0: _rec(ids, 0, "cancelled"), 2: _rec(ids, 2, "disconnect", 1)}
    assert (judge(records, 3, silent=[1]).kind, judge(records, 3, silent=[1]).party) == \
        ("absent", 1)
    only_cancels = {0: _rec(ids, 0, "cancelled"), 2: _rec(ids, 2, "cancelled")}
    assert judge(only_cancels, 3, silent=[1]) == Judgement("silent", 1, judge(
        only_cancels, 3, silent=[1]).reason)


def test_a_member_that_signed_why_it_stopped_is_not_named_absent_by_its_echo(ids) -> None:
    """It failed a MAC check and left; the others saw it go. Nobody deviated provably, and
    nobody vanished: nobody is named."""
    records = {0: _rec(ids, 0, "mac"), 1: _rec(ids, 1, "disconnect", 0),
               2: _rec(ids, 2, "disconnect", 0)}
    assert judge(records, 3).kind == "none"
    stalled = {1: _rec(ids, 1, "timeout", 2), 0: _rec(ids, 0, "disconnect", 1),
               2: _rec(ids, 2, "cancelled")}  # it woke up after the owner cancelled it
    assert (judge(stalled, 3).kind, judge(stalled, 3).party) == ("absent", 2)
    woke = {2: _rec(ids, 2, "timeout", 1), 0: _rec(ids, 0, "disconnect", 2),
            1: _rec(ids, 1, "disconnect", 2)}  # the staller woke up to find 2 gone
    assert (judge(woke, 3).kind, judge(woke, 3).party) == ("absent", 1)


def test_a_member_cut_off_while_the_mesh_forms_is_named_not_the_peer_that_waited_for_it(ids):
    """2 connected to 0, then its cable was cut before it reached 1: 0 waited a whole
    timeout for 1's first message (1 was still waiting for 2 to connect), and 1, stopped by
    the owner's cancel, says it had waited as long for 2. 2 answers nobody."""
    records = {0: _rec(ids, 0, "timeout", 1), 1: _rec(ids, 1, "setup", 2)}
    assert (judge(records, 3).kind, judge(records, 3).party) == ("absent", 2)
    # a member that answered was not cut off: a setup record naming it weighs nothing (a
    # liar could sign one against anybody, and a slow peer is no absent one)
    answered = {**records, 2: _rec(ids, 2, "cancelled")}
    assert judge(answered, 3).party == 1
    assert judge({0: _rec(ids, 0, "error"), 1: _rec(ids, 1, "setup", 2),
                  2: _rec(ids, 2, "cancelled")}, 3).kind == "self"
    # had 1 not said whom it waited for (a cancel that came before a whole timeout), the
    # only first-hand wait names 1: nothing tells the two apart then
    records[1] = _rec(ids, 1, "cancelled")
    assert judge(records, 3).party == 1


def test_a_stopped_setup_is_a_first_hand_wait_only_after_a_whole_timeout() -> None:
    def stopped(first_hand: bool) -> BaseException:
        try:
            raise SetupStopped("party 2 had not connected", 2, first_hand)
        except SetupStopped as inner:
            try:
                raise RuntimeError("job 1: setup") from inner
            except RuntimeError as exc:
                return exc
    assert classify(stopped(True), "cancelled") == ("setup", 2)
    assert classify(stopped(False), "cancelled") == ("cancelled", None)
    assert classify(stopped(True), "time") == ("time", None)  # its own budget, not a cancel


def test_an_internal_error_comes_after_absences_and_a_mac_failure_names_nobody(ids) -> None:
    records = {0: _rec(ids, 0, "error"), 1: _rec(ids, 1, "timeout", 2)}
    assert judge(records, 3).party == 2
    assert judge({0: _rec(ids, 0, "error")}, 3).kind == "self"
    macs = {p: _rec(ids, p, "mac") for p in range(3)}
    assert judge(macs, 3).kind == "none"


def test_classify_finds_the_peer_under_a_protocol_error_and_puts_budgets_first() -> None:
    try:
        try:
            raise PeerDisconnected("party 2 left", 2)
        except PeerDisconnected as inner:
            raise RuntimeError("HE slice failed") from inner
    except RuntimeError as exc:
        assert classify(exc) == ("disconnect", 2)
        assert classify(exc, "memory") == ("memory", None)
    assert classify(PeerTimeout("silent", 1)) == ("timeout", 1)
    assert classify(CorruptShareError(Path("x"), "d", 0, "age", "checksum")) == ("store", None)
    assert classify(MemoryError()) == ("memory", None)


def test_the_memory_watchdog_stops_a_job_that_grows_past_its_budget() -> None:
    budget = JobBudget(steps=10**9, elements=10**6, seconds=60.0, memory_mb=64)
    with Guard(budget) as guard:
        hog = np.ones(200 * 2**20 // 8)  # 200 MB, touched
        deadline = time.monotonic() + 5
        while not guard.budget.stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        del hog
    assert guard.limit == "memory" and "budget of 64 MB" in guard.budget.why


# --------------------------------------------------------------------------- on a network


def _people(root: Path) -> tuple[Path, Schema]:
    lines = (ROOT / "data" / "benefits.csv").read_text().splitlines()[:ROWS + 1]
    (root / "people.csv").write_text("\n".join(lines) + "\n")
    body = Schema.load(ROOT / "examples" / "benefits.yaml").to_dict()
    body.pop("rows", None)
    return root / "people.csv", Schema.from_dict(body)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """Four nodes; `people` shared 2-of-4 onto all of them (a quorum of 3 computes, and
    one suspended node leaves enough for a re-run)."""
    root = tmp_path_factory.mktemp("failures")
    csv, schema = _people(root)
    with cluster(root, 4, housekeeping=2.0) as net:
        net.owner.share(csv, schema, "people", t=2, n=4)
        yield net


@pytest.fixture(scope="module")
def table(net):
    """The rows `people` holds, as the owner read them."""
    return pacsv.read_csv(net.root / "people.csv", convert_options=pacsv.ConvertOptions(
        strings_can_be_null=False))


def _run(net, source: str, **kw):
    author, sig = sign_script(net.analyst, source)
    kw.setdefault("dealer_seed", os.urandom(32))
    kw.setdefault("timeout", 120.0)
    return run_job(net.owner, "people", source, author=author, signature=sig, **kw)


def _inactive(net) -> set[str]:
    lg = net.owner.ledger
    return {n.address for n in net.nodes if not lg.node(n.address).active}


def _no_open_job(net) -> None:
    lg = net.owner.ledger
    for n in net.nodes:
        assert lg.jobs_for(n.address) == [], "a job was left open with its escrow"


LOOP = "s = 0.0\nfor i in range({n}):\n    s = s + mean(data.age * (i % 3))\nreveal(s, 's')\n"


def test_a_runaway_script_is_refused_before_anything_is_posted(net) -> None:
    """Two nested range(100000) loops and a list of 10^10 elements: the owner's dry run
    stops them in seconds; no job is posted, nobody is suspended."""
    lg = net.owner.ledger
    posted = len([e for e in lg.events() if e[0] == "JobPosted"])
    t0 = time.monotonic()
    nested = ("t = 0\nfor i in range(100000):\n    for j in range(100000):\n"
              "        t = t + 1\nreveal(mean(data.age) + t, 'm')\n")
    with pytest.raises(JobError, match="ran over its budget"):
        _run(net, nested)
    with pytest.raises(JobError, match="10,000,000,000 elements"):
        _run(net, "xs = [0.0] * 10000000000\nreveal(mean(data.age), 'm')\n")
    assert time.monotonic() - t0 < 30
    assert len([e for e in lg.events() if e[0] == "JobPosted"]) == posted
    assert _inactive(net) == set()


def test_a_job_over_its_posted_work_or_time_is_stopped_refunded_and_blames_nobody(net):
    """The members stop at the posted rounds (what the owner paid for), or at the time
    budget, each signs why; the owner cancels and is refunded; nobody is suspended."""
    lg = net.owner.ledger
    before = lg.claimable(lg.address)
    t0 = time.monotonic()
    with pytest.raises(JobError, match="nobody is blamed") as err:
        _run(net, LOOP.format(n=2000), rounds=40)
    assert "work" in str(err.value) and time.monotonic() - t0 < 60
    with pytest.raises(JobError, match="nobody is blamed") as err:
        _run(net, LOOP.format(n=20000), timeout=10.0)
    assert "time" in str(err.value)
    assert lg.claimable(lg.address) > before  # both escrows came back
    assert _inactive(net) == set()
    _no_open_job(net)


def _job_id(said: list[str]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for s in list(said):
            if s.startswith("job ") and "computing" in s:
                return int(s.split()[1].rstrip(":"))
        time.sleep(0.05)
    raise AssertionError(f"no job started: {said}")


def test_enigma_job_cancel_stops_the_quorum_at_once_and_refunds(net) -> None:
    said: list[str] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            _run(net, LOOP.format(n=5000), progress=said.append)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=go)
    worker.start()
    job_id = _job_id(said)
    time.sleep(1.0)
    t0 = time.monotonic()
    refund = cancel_job(net.owner, job_id)
    worker.join(60)
    assert not worker.is_alive() and time.monotonic() - t0 < 30
    assert refund > 0 and net.owner.ledger.job(job_id).status is JobStatus.CANCELLED
    assert errors and isinstance(errors[0], JobError)
    assert _inactive(net) == set()
    assert any("cancelled by its owner" in n.log() for n in net.nodes)


def test_ctrl_c_in_run_cancels_the_job_and_refunds(net) -> None:
    said: list[str] = []
    timer = threading.Thread(target=lambda: (_job_id(said), time.sleep(1.0),
                                             os.kill(os.getpid(), signal.SIGINT)))
    timer.start()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with pytest.raises(JobCancelled, match="wei of escrow went back") as err:
            _run(net, LOOP.format(n=5000), progress=said.append)
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    job_id = int(str(err.value).split()[1])
    assert net.owner.ledger.job(job_id).status is JobStatus.CANCELLED
    assert _inactive(net) == set()
    _no_open_job(net)


def _resume(net, node) -> None:
    out = CliRunner().invoke(node_command, [
        "resume", "--rpc", net.rpc, "--deployment", str(net.deployment),
        "--account", node.address])
    assert out.exit_code == 0, out.output
    assert "active again" in out.output


def test_a_flipped_byte_in_a_share_file_names_its_holder_alone_and_the_rerun_is_right(net, table):
    """The holder reads a damaged chunk, signs `store`, the owner cancels the others at
    once, reports it (suspended, not slashed) and re-runs without it; `enigma node
    resume` puts it back once fixed."""
    owner, victim = net.owner, net.nodes[2]
    gen = owner.state("people").gen
    target = (victim.home / "shares" / store_name("people", owner.identity.public_key, gen)
              / "00000000" / "age.share")
    original = target.read_bytes()
    raw = bytearray(original)
    raw[-5] ^= 0x40
    target.write_bytes(bytes(raw))
    try:
        for _ in range(12):  # until the draw picks the damaged holder (3 of 4 each time)
            t0 = time.monotonic()
            out = _run(net, "reveal(mean(data.age), 'm')\n")
            if out.incidents:
                break
        assert out.incidents, "the damaged holder was never drawn"
        assert time.monotonic() - t0 < 90
        incident = out.incidents[0]
        assert (incident.verdict, incident.culprit) == ("self", victim.address)
        assert not incident.proved
        want = np.mean(table.column("age").to_numpy())
        assert abs(float(out.results["m"].value) - want) <= float(out.results["m"].error)
        assert _inactive(net) == {victim.address}
    finally:
        target.write_bytes(original)
    _resume(net, victim)
    assert _inactive(net) == set()
    _no_open_job(net)


ORPHAN = """
import os, sys
from pathlib import Path
from enigma.app.orchestration import run_job
from enigma.app.owner import Owner
home, rpc, deployment, account, boot, author, sig = sys.argv[1:8]
source = sys.stdin.read()
with Owner.open(Path(home), rpc, Path(deployment), account, [("127.0.0.1", int(boot))]) as o:
    run_job(o, "people", source, author=author, signature=bytes.fromhex(sig),
            dealer_seed=os.urandom(32), timeout=300.0, progress=lambda s: print(s, flush=True))
"""


def test_members_stop_when_the_owners_client_is_killed(net) -> None:
    """`enigma run` killed with SIGKILL mid-job: the members see its connection close and
    stop at their next step instead of computing for nobody until the time budget."""
    owner, source = net.owner, LOOP.format(n=20000)
    author, sig = sign_script(net.analyst, source)
    boot = net.nodes[0].dht_port
    client = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, str(owner.home), net.rpc,
         str(net.deployment), owner.ledger.address, str(boot), author, sig.hex()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write(source)
    client.stdin.close()
    said: list[str] = []
    while not any("computing" in s for s in said):
        said.append(client.stdout.readline())
        assert said[-1], f"the client ended before the job started: {said}"
    job_id = _job_id(said)
    time.sleep(1.0)
    client.kill()
    client.wait()
    t0 = time.monotonic()
    stopped = f"job {job_id} stopped"
    while time.monotonic() - t0 < 20 and sum(stopped in n.log() for n in net.nodes) < 3:
        time.sleep(0.2)
    assert sum(stopped in n.log() for n in net.nodes) == 3, "a member computes for nobody"
    assert any("hung up" in n.log() for n in net.nodes)
    assert time.monotonic() - t0 < 20  # not the time budget (270 s)
    assert cancel_job(owner, job_id) > 0  # the owner, back, cancels the orphan for a refund
    assert _inactive(net) == set()


def test_a_job_left_open_is_closed_at_its_deadline_by_its_own_members(net) -> None:
    """An owner that posts and vanishes: the members' housekeeping closes the job once the
    ledger's clock passes its deadline, and the poster gets the escrow back."""
    owner, source = net.owner, "reveal(mean(data.age), 'm')\n"
    lg = owner.ledger
    author, sig = sign_script(net.analyst, source)
    job = lg.post_job(owner.state("people").ledger_id, script_hash(source.encode()), author,
                      sig, 3, 100, 100_000, 0)
    before = lg.claimable(lg.address)
    advance_time(lg.w3, lg.job(job.job_id).deadline - lg.chain_time() + 1)
    deadline = time.monotonic() + 30
    while lg.job(job.job_id).status is JobStatus.OPEN and time.monotonic() < deadline:
        time.sleep(0.5)
    assert lg.job(job.job_id).status is JobStatus.TIMED_OUT
    assert lg.claimable(lg.address) - before >= job.escrow  # (and any other job it outlived)
    assert _inactive(net) == set()


def test_a_member_killed_during_he_preprocessing_is_named_and_nobody_else(net, table) -> None:
    """kill -9 of a member while the quorum makes its HE preprocessing: the owner hears
    nothing from it, the others sign that it vanished; it alone is suspended, and the
    job re-runs on the three nodes left (last test: the killed node stays down)."""
    said: list[str] = []
    by_address = {n.address: n for n in net.nodes}
    killed: list[str] = []

    def kill() -> None:
        job = net.owner.ledger.job(_job_id(said))
        time.sleep(1.0)
        by_address[job.quorum[1]].kill()
        killed.append(job.quorum[1])

    killer = threading.Thread(target=kill)
    killer.start()
    out = _run(net, "reveal(mean(data.age), 'm')\n", dealer_seed=None, progress=said.append)
    killer.join()
    assert [i.culprit for i in out.incidents] == killed
    assert out.incidents[0].verdict in ("silent", "absent")
    want = np.mean(table.column("age").to_numpy())
    assert abs(float(out.results["m"].value) - want) <= float(out.results["m"].error)
    assert _inactive(net) == set(killed)
    _no_open_job(net)
