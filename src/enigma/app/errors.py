"""One line for a person from any exception a command lets through (the CLI's group, cli.py).

Why by kind rather than a try/except in every command: the same mistake (a chain that is
down, an account with no ether) reaches many commands through many layers. Enigma's own
exceptions already say what was wrong and what to do, so their text is the line; the
ledger client's libraries (web3, requests, eth_utils) speak in their own terms, so the
cases a user meets are put in Enigma's. Anything else is a bug: it says so and how to get
the traceback for a report (`enigma --debug ...`).
"""

from __future__ import annotations

import ast
import re

from . import context

DEBUG_HINT = "run again as `enigma --debug ...` for the traceback"
ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"')\]]+)")
SENDER = re.compile(r"Sender (b'(?:[^'\\]|\\.)*')")
ADDRESS_BYTES = 20
UNFUNDED = ("cannot afford", "insufficient funds")


def explain(exc: BaseException) -> str:
    """The problem and its fix in one line (see the module docstring)."""
    if _ours(exc):
        return _chain_hint(_short_cause(exc))
    if _kind(exc, "web3.", "Web3RPCError"):
        return _rpc_refusal(exc)
    if _connection_error(exc):
        return _chain_hint(f"lost the connection to the chain ({_reason(exc)}); check that "
                           "it still runs (`enigma status`)")
    if isinstance(exc, OSError | ValueError) or type(exc).__name__ == "ValidationError":
        return _one_line(str(exc)) or type(exc).__name__
    return f"internal error ({type(exc).__name__}: {_one_line(str(exc))}); {DEBUG_HINT} " \
           "and report it"


def _ours(exc: BaseException) -> bool:
    """Enigma's own exceptions, whose messages are written for people."""
    return any(cls.__module__.startswith("enigma.") for cls in type(exc).__mro__)


def _kind(exc: BaseException, module: str, *names: str) -> bool:
    """Whether `exc` is one of a library's exception classes, without importing the library
    (an error in `enigma schema` should not wait for web3 to load)."""
    return any(cls.__module__.startswith(module) and cls.__name__ in names
               for cls in type(exc).__mro__)


def _connection_error(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError) or _kind(exc, "requests.", "ConnectionError",
                                                     "Timeout")


def _reason(exc: BaseException) -> str:
    """The operating system's words for a failed connection ("Connection refused")."""
    found = ERRNO.search(str(exc))
    return found.group(1).strip() if found else type(exc).__name__


def _short_cause(exc: BaseException) -> str:
    """Enigma's message with a quoted connection error (a few hundred characters of
    urllib3's pool repr) cut down to its reason."""
    text, cause = str(exc), exc.__cause__
    if cause is not None and _connection_error(cause) and str(cause) in text:
        text = text.replace(str(cause), _reason(cause))
    return text


def _chain_hint(text: str) -> str:
    """Where the chain URL in `text` came from the context, say how to bring it back."""
    try:
        found = context.Context.find()
    except context.ContextError:
        return text
    if found is not None and found.rpc in text and found.network_home is not None:
        text += (f" (the context {found.path} names this chain: `enigma up --home "
                 f"{found.network_home}` resumes it)")
    return text


def _rpc_refusal(exc: BaseException) -> str:
    """A JSON-RPC error from the chain; the unfunded account named."""
    message = str(getattr(exc, "message", exc))
    if any(word in message for word in UNFUNDED):
        who = "the paying account"
        sender = SENDER.search(message)
        if sender:  # the embedded chain's words; the text may come escaped once more
            raw = ast.literal_eval(sender.group(1).replace("\\\\", "\\"))
            if len(raw) == ADDRESS_BYTES:
                who = "account 0x" + raw.hex()
        return (f"{who} has too little ether to pay for the transaction's gas; fund it, or "
                "pay from a funded account (`enigma context` lists this network's)")
    return f"the chain refused the request: {_one_line(message)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
