"""The embedded chain kept on disk (ledger/journal.py, devchain.Chain with a state folder).

A chain restarted on its folder is the chain it was: same contracts, records and
balances, and it goes on from there. A crash mid-append costs only the block that was
never acknowledged; any other damage is a one-line error naming the file, block and byte.
"""

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_utils import keccak

from enigma.ledger import Ledger, LedgerParams, start_devchain
from enigma.ledger.commands import ledger as ledger_group
from enigma.ledger.devchain import advance_time
from enigma.ledger.journal import BLOCKS_FILE, JournalError, read_blocks

PARAMS = LedgerParams(unbonding_period=100)


def _world(state: Path) -> tuple[object, list[str], int]:
    """A chain on `state` with the contracts and two registered nodes, one unbonding:
    (deployment, its accounts, the chain time it stopped at)."""
    with start_devchain(accounts=4, state=state) as chain:
        admin = Ledger.connect(chain.url, chain.accounts[0])
        deployment = admin.deploy(PARAMS)
        for i in (1, 2):
            node = Ledger.connect(chain.url, chain.accounts[i], deployment)
            node.register_node(f"10.0.0.{i}:7000", keccak(bytes([i])), 10**18)
        Ledger.connect(chain.url, chain.accounts[2], deployment).request_withdrawal()
        advance_time(admin.w3, 50)
        return deployment, chain.accounts, admin.chain_time()


def test_a_restarted_chain_is_the_same_chain_and_goes_on(tmp_path):
    deployment, accounts, stopped_at = _world(tmp_path)
    with start_devchain(accounts=4, state=tmp_path) as chain:
        assert chain.chain.resumed > 0
        admin = Ledger.connect(chain.url, accounts[0], deployment)
        assert admin.params() == PARAMS
        assert admin.active_nodes() == [accounts[1]]
        assert admin.node(accounts[1]).deposit == 10**18
        assert admin.chain_time() >= stopped_at  # the clock moved forward never back
        advance_time(admin.w3, 60)  # past the unbonding period set before the restart
        assert Ledger.connect(chain.url, accounts[2], deployment).withdraw() == 10**18
        Ledger.connect(chain.url, accounts[1], deployment).set_endpoint("10.0.0.9:7001")
        blocks = admin.w3.eth.block_number
    with start_devchain(accounts=4, state=tmp_path) as chain:
        admin = Ledger.connect(chain.url, accounts[0], deployment)
        assert admin.w3.eth.block_number == blocks == chain.chain.resumed
        assert admin.node(accounts[1]).endpoint == "10.0.0.9:7001"
        assert not admin.node(accounts[2]).registered  # withdrawn after the first restart


def test_a_torn_last_record_is_cut_off_and_the_chain_resumes_before_it(tmp_path):
    """A crash mid-append leaves a record shorter than its header says: that block was
    never acknowledged, so the chain resumes from the one before, and says so."""
    deployment, accounts, _ = _world(tmp_path)
    journal = tmp_path / BLOCKS_FILE
    whole = read_blocks(tmp_path).blocks
    with open(journal, "ab") as f:
        f.write(b"\x00\x00\x10\x00" + os.urandom(40))  # a header and part of a payload
    with start_devchain(accounts=4, state=tmp_path) as chain:
        assert (chain.chain.resumed, chain.chain.dropped_bytes) == (len(whole), 44)
        admin = Ledger.connect(chain.url, accounts[0], deployment)
        assert admin.active_nodes() == [accounts[1]]
        Ledger.connect(chain.url, accounts[3], deployment).register_node(
            "10.0.0.3:7000", keccak(b"3"), 10**18)
    assert len(read_blocks(tmp_path).blocks) == len(whole) + 1


@pytest.mark.parametrize("where", ["payload", "length"])
def test_a_damaged_record_is_named_never_skipped(tmp_path, where):
    _world(tmp_path)
    journal = tmp_path / BLOCKS_FILE
    data = bytearray(journal.read_bytes())
    first = int.from_bytes(data[:4], "big")
    second = 36 + first  # the second block's record starts here
    if where == "payload":
        data[second + 36 + 5] ^= 0x01
    else:
        data[second:second + 4] = (1 << 30).to_bytes(4, "big")
    journal.write_bytes(bytes(data))
    with pytest.raises(JournalError, match=rf"damaged at block 2 \(byte {second}\)"):
        start_devchain(accounts=4, state=tmp_path)
    got = CliRunner().invoke(ledger_group, ["serve", "--port", "0", "--accounts", "4",
                                            "--state", str(tmp_path)])
    assert got.exit_code == 1
    [line] = got.output.strip().splitlines()
    assert line.startswith("Error: ") and f"truncate it to {second} bytes" in line
    assert journal.read_bytes() == bytes(data)  # nothing was cut


def test_history_rewrites_and_another_account_count_are_refused(tmp_path):
    _world(tmp_path)
    with pytest.raises(JournalError, match="created with 4 funded accounts, not 6"):
        start_devchain(accounts=6, state=tmp_path)
    with start_devchain(accounts=4, state=tmp_path) as chain:
        reply = chain.chain.handle({"jsonrpc": "2.0", "id": 1, "method": "evm_snapshot",
                                    "params": []})
        assert "never rewrites its history" in reply["error"]["message"]


def test_after_a_failed_write_the_chain_changes_nothing_more(tmp_path):
    """A block that could not be journaled is not acknowledged, and nothing is built on
    it: the chain refuses every further call until restarted, then resumes from disk."""
    deployment, accounts, _ = _world(tmp_path)
    kept = len(read_blocks(tmp_path).blocks)
    with start_devchain(accounts=4, state=tmp_path) as chain:
        journal = chain.chain._journal
        os.close(journal._fd)  # the disk goes away: writes fail with an OSError
        journal._fd = os.open(tmp_path / BLOCKS_FILE, os.O_RDONLY)
        node = Ledger.connect(chain.url, accounts[3], deployment)
        with pytest.raises(Exception, match="cannot write the chain journal"):
            node.register_node("10.0.0.3:7000", keccak(b"3"), 10**18)
        with pytest.raises(Exception, match="stopped after a failed write"):
            node.node()
    with start_devchain(accounts=4, state=tmp_path) as chain:
        assert chain.chain.resumed == kept
        assert not Ledger.connect(chain.url, accounts[0], deployment).node(
            accounts[3]).registered
