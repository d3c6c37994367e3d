"""What keeps the console the owner's alone: where it listens, who may use it, which
requests may change anything.

Why these three rules (issue 20, point 5):
- Loopback by default. The console holds the owner's ledger account and shows the owner's
  results; on 127.0.0.1 only processes of this machine reach it. Any other address needs
  `--host` said out loud, and then a login.
- A token printed at start. `secrets.token_urlsafe` (256 bits), shown once on the terminal
  that started the console; a browser that presents it (the printed URL carries it, or the
  login form) gets a session cookie (HttpOnly, SameSite=Strict) and the token is never
  stored anywhere. On loopback no login is asked: whoever can reach 127.0.0.1 can already
  read the owner's home.
- A CSRF token on every state-changing form. Each session gets a random token kept in its
  signed cookie; a POST whose form field does not match it (compared in constant time) is
  refused with 400 before any handler runs. SameSite=Strict alone would not protect a
  browser that ignores it, and a page on another site cannot read the token to copy it.
- On loopback, only loopback names in the Host header. A page on another site could
  otherwise rebind its own name to 127.0.0.1 (DNS rebinding) and read the console's pages
  as same-origin, results included; its requests carry its own name as Host, so they are
  refused.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from flask import Flask, abort, redirect, request, session, url_for

LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
CSRF_FIELD = "csrf_token"
OPEN_ENDPOINTS = ("login", "static")
"""Endpoints a browser reaches before it has logged in."""


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the console on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def csrf_token() -> str:
    """This session's CSRF token (made on first use); templates put it in every form."""
    token = session.get(CSRF_FIELD)
    if token is None:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def token_matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def install(app: Flask, login_token: str | None) -> None:
    """Guard every request of `app`: the login (when `login_token` is set) and CSRF."""
    app.config.update(SECRET_KEY=secrets.token_bytes(32), SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict")
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def guard() -> object:
        if login_token is None and request.host.rsplit(":", 1)[0] not in LOOPBACK_NAMES:
            abort(400, f"this console answers to 127.0.0.1 and localhost only, not to "
                       f"{request.host!r}: open it by the URL it printed")
        if login_token is not None and not session.get("logged_in"):
            given = request.args.get("token")
            if token_matches(given, login_token):
                session["logged_in"] = True
                return redirect(request.path)
            if request.endpoint not in OPEN_ENDPOINTS:
                return redirect(url_for("login", next=request.path))
        if request.method == "POST" and not token_matches(
                request.form.get(CSRF_FIELD), session.get(CSRF_FIELD, "")):
            abort(400, "this form is stale or came from another site (no valid CSRF token); "
                       "reload the page and send it again")
        return None

    @app.after_request
    def no_framing(response):  # clickjacking: no other site may frame the console
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
