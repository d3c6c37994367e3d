"""`./run demo --console`: a local network, a dataset on it, and the console, until Ctrl-C.

The owner then does in the browser what `./run demo` does on the terminal: look at the
shared table, check, estimate and run examples/*.py on it, read the results and the chain.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
import threading

from enigma.app.context import Context
from enigma.app.network import LocalNetwork
from enigma.app.owner import Owner
from enigma.lang.schema import Schema

from .command import start

ROOT = pathlib.Path(__file__).resolve().parents[4]


def console_demo(nodes: int = 5, insecure_dealer: bool = False) -> int:
    """Start the network, share data/benefits.csv, serve the console; 0 after Ctrl-C."""
    home = pathlib.Path(tempfile.mkdtemp(prefix="enigma-console-demo-"))
    net = None
    try:
        print(f"1. Starting the embedded ledger and {nodes} nodes (logs in {home / 'logs'})",
              flush=True)
        net = LocalNetwork.start(home, nodes)
        context = Context.load(home / "context.json")
        print("2. The owner shares data/benefits.csv onto every node (examples/benefits.yaml)",
              flush=True)
        with Owner.open(pathlib.Path(context.owner_home), context.rpc,
                        pathlib.Path(context.deployment), context.owner_account,
                        net.bootstrap) as owner:
            owner.share(ROOT / "data" / "benefits.csv",
                        Schema.load(ROOT / "examples" / "benefits.yaml"), "benefits",
                        quorum=min(3, nodes), n=nodes)
        server, url, console = start(context, insecure_dealer=insecure_dealer)
        print(f"3. The owner's console: {url}", flush=True)
        print("   scripts to try: examples/by_state.py, examples/regression.py; the analyst's "
              "signature: tick 'sign with the network's analyst account'", flush=True)
        if insecure_dealer:
            print("   *** INSECURE: jobs preprocess with the test dealer ***", flush=True)
        print("   Ctrl-C stops the console and the network", flush=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            thread.join()
        except KeyboardInterrupt:
            print("\nstopping", flush=True)
        finally:
            server.shutdown()
            server.server_close()
            console.close()
    finally:
        if net is not None:
            net.stop()
        shutil.rmtree(home, ignore_errors=True)
    return 0
