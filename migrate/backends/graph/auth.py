"""Credentials for Microsoft Graph through azure-identity, and one thread-safe bearer-token cache over them."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from migrate.errors import AuthError, ConfigError, EndpointUnreachable, SignInRefused, Unanswered

if TYPE_CHECKING:
    from migrate.config import Settings

log = logging.getLogger(__name__)

MICROSOFT_AUTHORITIES = (
    "login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn", "login.partner.microsoftonline.cn",
    "login.microsoftonline.de",
)
REFRESH_MARGIN = 120.0  # seconds before expiry at which a token is renewed


def graph_scope(graph_url: str) -> str:
    """The app-only scope of a Graph endpoint: '<scheme>://<host>/.default' (never derived per request)."""
    parts = urlsplit(graph_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


def _auth_hint(settings: Settings) -> str:
    src = settings.source
    what = {
        "client-secret": "the client secret (M365_CLIENT_SECRET or [source] client_secret_file) is current",
        "certificate": "the certificate in [source] certificate_path is the one uploaded to the app registration",
        "device-code": "the sign-in finished and the account may use the app",
    }[src.auth]
    return (
        f"check [source] tenant_id ({src.tenant_id or 'not set'}), client_id ({src.client_id or 'not set'}) and "
        f"authority ({src.authority}); check that {what}; `m365-migrate doctor` tests the sign-in"
    )


def make_credential(settings: Settings, env: Any = None) -> Any:
    """An azure-identity (sync) credential for [source]; the secret is read here and handed over, never kept.

    Instance discovery is switched off when the authority is not one of Microsoft's (sandbox, private clouds),
    and `ca_bundle` is trusted in addition to the system store.
    """
    import os

    from azure.identity import CertificateCredential, ClientSecretCredential, DeviceCodeCredential

    from migrate.config import load_certificate_password, load_certificate_path, load_client_secret

    env = os.environ if env is None else env
    src = settings.source
    if not src.tenant_id or not src.client_id:
        raise ConfigError(
            "[source] tenant_id and client_id must be set",
            hint="copy them from the app registration's overview page in the Entra admin centre",
        )
    host = urlsplit(src.authority).hostname or ""
    kwargs: dict[str, Any] = {"authority": src.authority}
    if host.lower() not in MICROSOFT_AUTHORITIES:
        kwargs["disable_instance_discovery"] = True
    if src.ca_bundle:
        kwargs["connection_verify"] = str(src.ca_bundle)
    if src.auth == "client-secret":
        secret = load_client_secret(settings, env)
        return ClientSecretCredential(src.tenant_id, src.client_id, secret.reveal(), **kwargs)
    if src.auth == "certificate":
        path = load_certificate_path(settings)
        password = load_certificate_password(env)
        return CertificateCredential(
            src.tenant_id, src.client_id, certificate_path=str(path),
            password=password.reveal().encode() if password else None, **kwargs,
        )

    def prompt(uri: str, code: str, expires: Any) -> None:
        print(f"To sign in, open {uri} and enter the code {code}", file=sys.stderr)

    return DeviceCodeCredential(client_id=src.client_id, tenant_id=src.tenant_id, prompt_callback=prompt, **kwargs)


class TokenProvider:
    """Bearer tokens for one scope, cached until shortly before expiry; `refresh()` forces a new one.

    A 401 "token expired" answer calls `refresh(old)`: the credential is rebuilt (azure-identity would otherwise
    hand back its cached token), and concurrent callers that saw the same old token share one refresh.
    Errors: AuthError when the authority refuses the credentials, TransientError when it cannot be reached.
    """

    def __init__(self, factory: Callable[[], Any], scope: str, hint: str = "", where: str = "") -> None:
        self._factory = factory
        self._credential: Any = None
        self.scope = scope
        self.hint = hint
        self.where = where  # "sign-in authority https://… ([source] authority)", for an authority that is down
        self._token: str | None = None
        self._expires = 0.0
        self._margin = REFRESH_MARGIN
        self._lock = threading.Lock()
        self.refreshes = 0
        self.fetches = 0

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._expires - time.time() < self._margin:
                self._credential = None  # azure-identity would return its cached token; ask afresh
                self._fetch()
            assert self._token is not None
            return self._token

    def refresh(self, old: str | None = None) -> str:
        """A new token, unless another thread already replaced `old`."""
        with self._lock:
            if old is None or self._token == old:
                self.refreshes += 1
                self._credential = None
                self._fetch()
            assert self._token is not None
            return self._token

    def _fetch(self) -> None:
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

        if self._credential is None:
            self._credential = self._factory()
        try:
            tok = self._credential.get_token(self.scope)
        except ClientAuthenticationError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "Failed to establish a new connection" in first or "Max retries exceeded" in first:
                # azure-identity (msal) has already retried the connection itself: the authority is not there
                raise EndpointUnreachable(f"{self.where or 'the sign-in authority'} answered nothing: "
                                          f"{first.rsplit(': ', 1)[-1][:200]}",
                                          hint="check [source] authority, and that this machine reaches it "
                                          "(firewall, proxy, DNS)") from None
            raise SignInRefused(f"sign-in to Microsoft Entra ID failed: {first[:300]}", hint=self.hint) from None
        except ServiceRequestError as exc:
            raise Unanswered(f"cannot reach the sign-in authority: {exc}", where=self.where,
                             reason=str(exc).splitlines()[0][:200] or type(exc).__name__) from None
        except ValueError as exc:  # azure-identity's answer to a malformed authority or certificate
            raise AuthError(f"sign-in settings rejected: {exc}", hint=self.hint) from None
        self.fetches += 1
        self._token, self._expires = tok.token, float(tok.expires_on)
        # renew shortly before expiry: 2 minutes, or a fifth of the lifetime for short-lived (sandbox) tokens
        self._margin = min(REFRESH_MARGIN, max(0.0, self._expires - time.time()) / 5)
        log.debug("got a Graph token valid for %.0f s", self._expires - time.time())

    def close(self) -> None:
        cred = self._credential
        if cred is not None and hasattr(cred, "close"):
            cred.close()


def token_provider(settings: Settings, env: Any = None) -> TokenProvider:
    """The TokenProvider for [source]; the credential is built lazily, on the first call that needs a token."""
    return TokenProvider(lambda: make_credential(settings, env), graph_scope(settings.source.graph_url),
                         _auth_hint(settings), where=f"sign-in authority {settings.source.authority} "
                         "([source] authority)")
