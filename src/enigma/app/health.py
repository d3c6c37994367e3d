"""Is the node these settings describe serving? `python -m enigma.app.health` (the image's
HEALTHCHECK) and `enigma node health` ask its `/health` (app/metrics.py).

Why a module of its own: a container runtime runs the check every 30 s in each node's
container, and `enigma node` imports the whole node (numpy, numba, the MPC engine: seconds
of CPU); this imports only the settings (app/node_config.py) and the standard library.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from .node_config import ConfigError, config_path, env_settings, read_config

#: Where a wildcard bind answers on this machine.
_LOCAL = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


class Unhealthy(Exception):
    """The node does not serve; the message says what was asked and what came back."""


def probe(bind: str, metrics_port: int, timeout: float = 5.0) -> dict[str, Any]:
    """The node's /health body on `bind`:`metrics_port`; Unhealthy if it does not serve."""
    if not metrics_port:
        raise Unhealthy("metrics_port is 0 (any free port): the node's /health has no fixed "
                        "port to ask; set metrics_port (--metrics-port)")
    host = _LOCAL.get(bind, bind)
    url = f"http://[{host}]:{metrics_port}/health" if ":" in host else \
        f"http://{host}:{metrics_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return dict(json.loads(reply.read()))
    except urllib.error.HTTPError as exc:
        raise Unhealthy(f"node at {url} is not serving (HTTP {exc.code}: stopping or not "
                        "started)") from exc
    except (OSError, ValueError) as exc:
        raise Unhealthy(f"no node answers at {url} ({exc}); is it running with these "
                        "settings?") from exc


def summary(body: Mapping[str, Any]) -> str:
    """One line for a healthy node's body."""
    return (f"node: healthy id={body.get('node')} registered={body.get('registered')} "
            f"service={body.get('service_port')} dht={body.get('dht_port')}")


def main(environ: Mapping[str, str] = os.environ) -> int:
    """The settings as a node started with no options reads them (ENIGMA_NODE_* over the
    config file over the defaults), then `probe`; 0 healthy, 1 not, 2 bad settings."""
    try:
        env = env_settings(environ)
        path = config_path(None, env.get("home"), environ)
        settings = {**(read_config(path) if path is not None else {}), **env}
        body = probe(str(settings.get("bind", "127.0.0.1")),
                     int(settings.get("metrics_port", 0)))
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except Unhealthy as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(summary(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
