"""Compiled contracts: the `.vy` sources are the truth, the JSON artifacts a checked cache.

Why cache: compiling the three contracts with vyper takes seconds, and every node process
would pay it at start.  Why check: a stale artifact would deploy code nobody reviewed, so an
artifact is used only when the sha256 of its source and the vyper version both match;
otherwise the source is compiled again and the artifact rewritten atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enigma.files import write_atomic

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
BUILD_DIR = CONTRACTS_DIR / "build"
CONTRACT_NAMES = ("registry", "datasets", "jobs")


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    source_sha256: str
    vyper_version: str


def source_digest(name: str) -> str:
    return hashlib.sha256((CONTRACTS_DIR / f"{name}.vy").read_bytes()).hexdigest()


def vyper_version() -> str:
    """The installed vyper's version, read from its metadata: importing vyper to ask it cost
    every node and command 0.1 s, and only a compile needs the compiler."""
    return importlib.metadata.version("vyper")


def compile_source(name: str) -> Artifact:
    import vyper  # the compiler, only when the cache is missing or stale

    source = (CONTRACTS_DIR / f"{name}.vy").read_text()
    out = vyper.compile_code(source, contract_path=f"{name}.vy", output_formats=["abi", "bytecode"])
    return Artifact(
        name=name,
        abi=out["abi"],
        bytecode=out["bytecode"],
        source_sha256=hashlib.sha256(source.encode()).hexdigest(),
        vyper_version=vyper_version(),
    )


def _read_cached(name: str) -> Artifact | None:
    path = BUILD_DIR / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
        artifact = Artifact(**raw)
    except (OSError, ValueError, TypeError):
        return None
    fresh = (
        artifact.source_sha256 == source_digest(name)
        and artifact.vyper_version == vyper_version()
    )
    return artifact if fresh and artifact.name == name else None


def load(name: str) -> Artifact:
    """The artifact for contract `name`, compiled now if the cache is missing or stale."""
    if name not in CONTRACT_NAMES:
        raise KeyError(f"unknown contract {name!r}; the ledger's contracts are {CONTRACT_NAMES}")
    cached = _read_cached(name)
    if cached is not None:
        return cached
    artifact = compile_source(name)
    text = json.dumps(artifact.__dict__, indent=1, sort_keys=True) + "\n"
    # a read-only install still works; it just compiles at every start
    with contextlib.suppress(OSError):
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        write_atomic(BUILD_DIR / f"{name}.json", [text.encode()])
    return artifact
