"""Enigma: analytics on secret-shared private data.

Layers, bottom to top (imports only point down; see docs/design.md):
field, sharing, net, mpc, prep, lang, ledger, storage, app.
"""

__version__ = "0.1.0"
