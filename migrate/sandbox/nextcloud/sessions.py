"""PHP sessions as Nextcloud 32 keeps them: set on every answer, and winning over Basic auth.

Reference §1.2 "Sessions win over Basic auth" (verified on 32.0.1): every answer of a request that carried no
session sets `<instanceid>`, `oc_sessionPassphrase` and the two same-site cookies (unauthenticated and 401
answers too), and ends with the session id regenerated (a second `<instanceid>` cookie, which the client keeps); a later request carrying a logged-in
session runs as that session's user whatever its `Authorization` header says (a wrong password beside it counts
no failed login). A client that shares one cookie jar between accounts therefore writes as, or is refused for,
the wrong user; this module lets the sandbox catch such a client.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

from .state import State
from .wire import Environ, StartResponse

PASSPHRASE = "oc_sessionPassphrase"
MAX_SESSIONS = 20_000      # the oldest are forgotten (PHP's session GC); a client of ours makes one per request


@dataclass
class Session:
    uid: str | None          # None: a session that never logged in (a failed or anonymous request)
    passphrase: str


class Sessions:
    """Session table of one sandbox; `state.sessions_enabled` switches the behaviour off (plain WebDAV never has it)."""

    def __init__(self, state: State) -> None:
        self.state = state

    def _cookies(self, environ: Environ) -> SimpleCookie | None:
        raw = environ.get("HTTP_COOKIE", "")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        return jar

    def carried(self, environ: Environ) -> Session | None:
        """The session a request carries (its id and passphrase both match), counted in `state.cookie_requests`."""
        jar = self._cookies(environ)
        if jar is None:
            return None
        st = self.state
        with st.lock:
            st.cookie_requests += 1
            if not st.sessions_enabled:
                return None
            sid = jar.get(st.instance_id)
            phrase = jar.get(PASSPHRASE)
            if sid is None or phrase is None:
                return None
            session = st.sessions.get(sid.value)
            if session is None or not secrets.compare_digest(session.passphrase, phrase.value):
                return None
            return session

    def user(self, environ: Environ) -> str | None:
        """The logged-in user of the carried session: this identity wins over any Authorization header."""
        session = self.carried(environ)
        if session is None or session.uid is None:
            return None
        with self.state.lock:
            self.state.session_logins += 1
        return session.uid

    def set_cookie_headers(self, environ: Environ, uid: str | None) -> list[tuple[str, str]]:
        """A new session for this answer, unless the request already carried a valid one (then nothing new)."""
        st = self.state
        if not st.sessions_enabled or self.carried_quietly(environ):
            return []
        first, sid, phrase = secrets.token_hex(13), secrets.token_hex(13), secrets.token_urlsafe(96)
        with st.lock:
            st.sessions[sid] = Session(uid, phrase)
            while len(st.sessions) > MAX_SESSIONS:
                del st.sessions[next(iter(st.sessions))]
        # Nextcloud marks them secure only over https; over plain http a client sends them back all the same
        secure = "secure; " if environ.get("wsgi.url_scheme") == "https" else ""
        attrs = f"path=/; {secure}HttpOnly; SameSite=Lax"
        forever = f"path=/; httponly; {secure}expires=Fri, 31-Dec-2100 23:59:59 GMT"
        return [("Set-Cookie", f"{st.instance_id}={first}; {attrs}"),
                ("Set-Cookie", f"{PASSPHRASE}={phrase}; {attrs}"),
                ("Set-Cookie", f"nc_sameSiteCookielax=true; {forever}; SameSite=lax"),
                ("Set-Cookie", f"nc_sameSiteCookiestrict=true; {forever}; SameSite=strict"),
                ("Set-Cookie", f"{st.instance_id}={sid}; {attrs}")]

    def setting_cookies(self, sr: StartResponse, environ: Environ, uid: Callable[[], str | None]) -> StartResponse:
        """Wrap `sr` so the answer sets a session for whoever `uid()` names when it starts (None: not logged in)."""

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = list(headers) + self.set_cookie_headers(environ, uid())
            return sr(status, headers, exc_info) if exc_info else sr(status, headers)

        return start

    def carried_quietly(self, environ: Environ) -> bool:
        jar = self._cookies(environ)
        if jar is None:
            return False
        sid = jar.get(self.state.instance_id)
        with self.state.lock:
            return sid is not None and sid.value in self.state.sessions
