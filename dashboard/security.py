"""Session cookies, CSRF checks and the security headers every answer carries (a strict CSP first of all)."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from aiohttp import web

from clients import AuthenticationError
from dashboard.errors import NOT_LOGGED_IN, ApiError, Handler
from dashboard.sessions import CookieSigner, SessionStore, UserSession
from mediadl_common import context

SESSION_COOKIE = "mediadl_session"
LOGIN_COOKIE = "mediadl_login"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATH = "/api/login"

# Scripts, styles, images and connections only from this origin; no inline script or style anywhere,
# no plugins, no framing, no <base> tricks, forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    # hls.js plays through Media Source Extensions: the <video> source is a blob: URL of this page.
    "media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

SIGNER = web.AppKey("signer", CookieSigner)
SESSIONS = web.AppKey("sessions", SessionStore)
COOKIE_SECURE = web.AppKey("cookie_secure", bool)
SESSION = web.RequestKey("session", UserSession)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: static files, API answers, errors and event streams alike."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    elif request.path.startswith("/static/"):
        # Cached, but revalidated (ETag/Last-Modified) on every load: an upgrade never runs yesterday's script.
        response.headers["Cache-Control"] = "no-cache"


def current_session(request: web.Request) -> UserSession:
    """The caller's session, or 401."""
    session: UserSession | None = request.get(SESSION)
    if session is None:
        raise NOT_LOGGED_IN
    return session


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the session named by the signed cookie; a client call refused for credentials ends it."""
    store = request.app[SESSIONS]
    session_id = request.app[SIGNER].unsign(request.cookies.get(SESSION_COOKIE))
    session = await store.lookup(session_id)
    if session is not None:
        request[SESSION] = session
    # Every log line of this request (and of an event stream it starts) names the user.
    stamp = context.user_id.set(session.user.id if session is not None else None)
    try:
        return await handler(request)
    except AuthenticationError:
        if session is not None:
            # The refresh token was refused or has expired: this login is over, whatever the page thinks.
            await store.remove(session.id, reason="refused")
        raise
    finally:
        context.user_id.reset(stamp)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every state-changing request must carry the session's CSRF token in a header, from this origin.

    A cross-site form or fetch cannot set the header (no CORS here) nor read the token, which the page gets
    only from a same-origin JSON answer. Login has its own token, bound to a pre-login cookie.
    """
    if request.method in SAFE_METHODS:
        return await handler(request)
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise ApiError(403, "CSRF_FAILED", "cross-origin request refused")
    if request.path == LOGIN_PATH:
        expected = login_csrf_token(request)
    else:
        expected = current_session(request).csrf_token
    given = request.headers.get(CSRF_HEADER, "")
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(403, "CSRF_FAILED", f"missing or wrong {CSRF_HEADER} header (reload the page)")
    return await handler(request)


def login_csrf_token(request: web.Request) -> str | None:
    """The token that goes with the browser's pre-login cookie, or None if it has none (or a forged one)."""
    signer = request.app[SIGNER]
    nonce = signer.unsign(request.cookies.get(LOGIN_COOKIE), purpose="login")
    return signer.token("login-csrf", nonce) if nonce else None


def issue_login_cookie(request: web.Request, response: web.StreamResponse) -> str:
    """Give the browser a pre-login cookie if it lacks a valid one; return the login CSRF token."""
    token = login_csrf_token(request)
    if token is not None:
        return token
    signer = request.app[SIGNER]
    nonce = secrets.token_urlsafe(24)
    set_cookie(request, response, LOGIN_COOKIE, signer.sign(nonce, purpose="login"), max_age=None)
    return signer.token("login-csrf", nonce)


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.app[COOKIE_SECURE],
    )


def clear_cookie(request: web.Request, response: web.StreamResponse, name: str) -> None:
    response.del_cookie(name, path="/", secure=request.app[COOKIE_SECURE], httponly=True, samesite="Strict")
