"""A client that sends its bytes one at a time, slowly: a slowloris attack."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def trickling(sock: socket.socket, data: bytes, interval: float) -> Iterator[None]:
    """Send `data` through `sock` one byte per `interval` s from a thread while the block
    runs; stop when the block ends or the peer hangs up."""
    stop = threading.Event()

    def run() -> None:
        for byte in data:
            if stop.wait(interval):
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
