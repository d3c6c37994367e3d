"""Anvil, foundry's Ethereum node, as a faster drop-in for the embedded chain.

Anvil ships as a binary inside the npm package @foundry-rs/anvil (through a
per-platform optional dependency), so `npm install` into a cache folder is all it takes;
nothing is downloaded at run time beyond the npm registry.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from eth_utils import to_checksum_address

from .errors import LedgerError

ANVIL_PACKAGE = "@foundry-rs/anvil@1.7.1"


class AnvilUnavailable(LedgerError):
    """Anvil cannot be installed or started here; the embedded chain still works."""


def default_cache_dir() -> Path:
    """`.cache/anvil` in a source checkout (gitignored), else under the user's cache."""
    repo = Path(__file__).resolve().parents[3]
    if (repo / "pyproject.toml").is_file():
        return repo / ".cache" / "anvil"
    return Path.home() / ".cache" / "enigma" / "anvil"


def anvil_binary(cache_dir: Path | None = None, install: bool = True) -> Path:
    """The anvil executable, installed with npm into `cache_dir` on first use."""
    cache = cache_dir or default_cache_dir()
    found = sorted(cache.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
    if found:
        return found[0]
    npm = shutil.which("npm")
    if not install or npm is None:
        raise AnvilUnavailable(
            "anvil is not installed and npm is not on PATH; install Node.js/npm "
            f"or run `npm install --prefix {cache} {ANVIL_PACKAGE}`"
        )
    cache.mkdir(parents=True, exist_ok=True)
    flags = ["--no-audit", "--no-fund", "--fetch-retries=1", "--fetch-timeout=60000"]
    result = subprocess.run(
        [npm, "install", *flags, "--prefix", str(cache), ANVIL_PACKAGE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found = sorted(cache.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
    if result.returncode != 0 or not found:
        raise AnvilUnavailable(
            f"`npm install {ANVIL_PACKAGE}` into {cache} did not produce an anvil binary "
            f"for this platform (exit {result.returncode}): {result.stderr.strip()[-400:]}"
        )
    return found[0]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _rpc(url: str, method: str, params: list[object]) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["result"]


@dataclass
class AnvilServer:
    """A running anvil process; `url` is its JSON-RPC endpoint."""

    process: subprocess.Popen[bytes]
    url: str
    accounts: list[str]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> AnvilServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_anvil(
    host: str = "127.0.0.1",
    port: int = 0,
    accounts: int = 10,
    cache_dir: Path | None = None,
    startup_timeout: float = 20.0,
) -> AnvilServer:
    """Start anvil (auto-mining, funded dev accounts) and wait until it answers."""
    binary = anvil_binary(cache_dir)
    port = port or free_port(host)
    url = f"http://{host}:{port}"
    cmd = [str(binary), "--host", host, "--port", str(port), "--accounts", str(accounts)]
    process = subprocess.Popen(
        [*cmd, "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + startup_timeout
    while True:
        try:
            addresses = _rpc(url, "eth_accounts", [])
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, err = process.communicate(timeout=10)
                raise AnvilUnavailable(
                    f"anvil at {url} did not start within {startup_timeout} s "
                    f"(exit {process.returncode}): {err.decode(errors='replace')[-400:]}"
                ) from None
            time.sleep(0.05)
    if not isinstance(addresses, list):
        process.kill()
        raise AnvilUnavailable(f"anvil at {url} answered eth_accounts with {addresses!r}")
    # anvil answers in lower case; web3 refuses addresses without their checksum
    return AnvilServer(
        process=process, url=url, accounts=[to_checksum_address(a) for a in addresses]
    )
