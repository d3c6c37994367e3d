"""A client's service link closed by another thread while a request waits on it: the owner
closes every member's connection once it stops waiting for their replies (`attempt.run_members`),
and the thread still inside `request` must end at once, not spin on a dead descriptor until
its timeout (it used to: a full core for the job's whole timeout, then a hang at exit)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from enigma.app import service
from enigma.app.service import Connection, ServiceError
from enigma.net.errors import NetError
from enigma.net.identity import Identity


def _silent_node(listener: socket.socket, identity: Identity, got: threading.Event) -> None:
    """Accept one client, take its request, never answer."""
    sock, _ = listener.accept()
    link, _ = service.accept(sock, identity, timeout=60.0)
    with contextlib.suppress(NetError):  # the second test's client leaves without asking
        if link.recv(30.0) is not None:
            got.set()
    time.sleep(5)
    link.close(grace=0.0)


def test_a_request_whose_connection_another_thread_closes_ends_at_once_without_spinning():
    node = Identity.generate()
    listener = socket.create_server(("127.0.0.1", 0))
    got = threading.Event()
    server = threading.Thread(target=_silent_node, args=(listener, node, got), daemon=True)
    server.start()
    conn = Connection.open("127.0.0.1", listener.getsockname()[1], Identity.generate(),
                           node.public_key, timeout=60.0)
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            conn.request("job-run")
        except BaseException as exc:  # handed to the test below
            outcome.append(exc)

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    assert got.wait(10)
    cpu0, t0 = time.thread_time(), time.monotonic()
    conn.close(grace=0.0)  # as run_members does, from a thread other than the waiting one
    asker.join(10)
    assert not asker.is_alive(), "the waiting request did not notice its link was closed"
    assert time.monotonic() - t0 < service.POLL_SLICE + 1.5
    assert len(outcome) == 1 and isinstance(outcome[0], ServiceError)
    assert outcome[0].kind == "connection", outcome[0]
    assert time.thread_time() - cpu0 < 0.5
    listener.close()


def test_a_closed_link_refuses_to_wait_and_says_why():
    node = Identity.generate()
    listener = socket.create_server(("127.0.0.1", 0))
    got = threading.Event()
    threading.Thread(target=_silent_node, args=(listener, node, got), daemon=True).start()
    conn = Connection.open("127.0.0.1", listener.getsockname()[1], Identity.generate(),
                           node.public_key, timeout=60.0)
    conn.close()
    with pytest.raises(ServiceError, match=r"job-run to node .*(closed|gone)"):
        conn.request("job-run")
    listener.close()
