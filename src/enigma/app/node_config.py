"""A node's settings in a file: `<home>/node.toml`, written by `enigma node init`.

Why a file: an administrator sets a node up once (which chain, which addresses, which
ports) and then starts it from a service manager or a container with no arguments; a
command line of twenty options does not survive that. Why TOML: Python reads it
(`tomllib`) without a dependency, and people edit it without breaking it.

Where a setting comes from, first match wins:

  1. the command line (`enigma node --port 7001`);
  2. the environment, `ENIGMA_NODE_<NAME>` (`ENIGMA_NODE_PORT=7001`): containers and
     service managers set variables, not arguments;
  3. the config file: `--config PATH`, else `$ENIGMA_NODE_CONFIG`, else `<home>/node.toml`;
  4. the built-in default.

The file never holds a secret: the ledger account's private key stays in the variable
that `key_env` names, and the node's identity key in `<home>/node.key`. The file is
still written atomically with mode 0600 (it names the account and the network).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from enigma.files import write_atomic

CONFIG_FILE = "node.toml"
CONFIG_ENV = "ENIGMA_NODE_CONFIG"
ENV_PREFIX = "ENIGMA_NODE_"

#: Every setting the file and the environment may hold, by its `enigma node` option name,
#: and its type (list = list of strings). Test-only fault injection is command line only.
SETTINGS: dict[str, type] = {
    "home": Path, "rpc": str, "deployment": Path, "account": str, "key_env": str,
    "bind": str, "advertise": str, "port": int, "dht_port": int, "metrics_port": int,
    "job_ports": str, "bootstrap": list, "deposit": int, "no_register": bool,
    "housekeeping": float, "unsealed_ttl": float, "results_ttl": float, "upload_quota": int,
    "watch_interval": float, "shutdown_grace": float, "prep_ahead": int,
    "prep_ahead_bits": int, "prep_ahead_inputs": int,
}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class ConfigError(Exception):
    """A config file or variable that cannot be used; the message names it and the fix."""


def _check(name: str, value: Any, where: str) -> Any:
    """`value` as the type of setting `name`, or ConfigError naming `where`."""
    kind = SETTINGS[name]
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        list: isinstance(value, list) and all(isinstance(v, str) for v in value),
        str: isinstance(value, str),
        Path: isinstance(value, str),
    }[kind]
    if not ok:
        want = {list: "a list of strings", Path: "a path string"}.get(kind, kind.__name__)
        raise ConfigError(f"{where}: {name} = {value!r} is not {want}; fix that line")
    return Path(value) if kind is Path else float(value) if kind is float else value


def read_config(path: Path) -> dict[str, Any]:
    """The settings in the TOML file at `path`; unknown keys and wrong types are refused."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read node config {path}: {exc.strerror}; check the path "
                          "or write one with `enigma node --home DIR init`") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"node config {path} is not valid TOML ({exc}); fix the file or "
                          "write a new one with `enigma node --home DIR init`") from exc
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"node config {path}: unknown setting(s) {unknown}; the known ones "
                          f"are {sorted(SETTINGS)} (docs/node.md)")
    return {k: _check(k, v, f"node config {path}") for k, v in data.items()}


def _parse_env(name: str, var: str, text: str) -> Any:
    kind = SETTINGS[name]
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ConfigError(f"{var}={text!r} is not a yes/no value; set it to true or false")
    if kind is list:
        return [item.strip() for item in text.split(",") if item.strip()]
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(f"{var}={text!r} is not a number; set it to "
                              f"{'7001' if kind is int else '60.0'} or unset it") from None
    return Path(text) if kind is Path else text


def env_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The settings given as ENIGMA_NODE_<NAME> variables (an empty variable counts as unset)."""
    out = {}
    for var, text in environ.items():
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV or not text:
            continue
        name = var[len(ENV_PREFIX):].lower()
        if name not in SETTINGS:
            raise ConfigError(f"{var} is not a node setting; the known ones are "
                              f"{ENV_PREFIX}<{'|'.join(n.upper() for n in SETTINGS)}>")
        out[name] = _parse_env(name, var, text)
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    if any(ord(c) < 32 for c in escaped):
        raise ConfigError(f"a setting holds a control character: {text!r}")
    return f'"{escaped}"'


def to_toml(settings: Mapping[str, Any]) -> str:
    """The file's text: one `name = value` line per setting that has a value, in SETTINGS order.

    A setting whose value is None (not set, no default) is written as a comment, so the
    administrator sees every knob and what it is called.
    """
    lines = ["# Enigma node settings (docs/node.md). Overridden by ENIGMA_NODE_<NAME>",
             "# variables and by `enigma node` options. No secrets here: the ledger key",
             "# stays in the variable that key_env names, the node key in node.key.", ""]
    for name in SETTINGS:
        value = settings.get(name)
        lines.append(f"# {name} =" if value is None else f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_config(path: Path, settings: Mapping[str, Any]) -> None:
    """Write `settings` (names of SETTINGS) to `path` atomically, mode 0600."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"not node settings: {unknown}")
    text = to_toml(settings)
    tomllib.loads(text)  # what we write must read back
    write_atomic(path, [text.encode()])


def config_path(explicit: Path | None, home: Path | None,
                environ: Mapping[str, str] = os.environ) -> Path | None:
    """The config file in force (see the module docstring), None when there is none.

    An explicit path (option or variable) must exist; `<home>/node.toml` is used if it does.
    """
    given = explicit or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    if given is not None:
        if not given.is_file():
            raise ConfigError(f"node config {given} does not exist; write it with "
                              "`enigma node --home DIR init` or fix the path")
        return given
    if home is not None and (home / CONFIG_FILE).is_file():
        return home / CONFIG_FILE
    return None


def parse_port_range(text: str, where: str = "job_ports") -> tuple[int, int]:
    """"LOW-HIGH" as (low, high), both in 1..65535; "" (any free port) as (0, 0)."""
    if not text:
        return 0, 0
    low, sep, high = text.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ConfigError(f"{where} = {text!r} is not a port range LOW-HIGH such as 7100-7199")
    lo, hi = int(low), int(high)
    if not 0 < lo <= hi < 65536:
        raise ConfigError(f"{where} = {text!r}: ports must satisfy 1 <= LOW <= HIGH <= 65535")
    return lo, hi
