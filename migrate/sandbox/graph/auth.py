"""TLS material (a generated CA) and the OAuth2 client-credentials endpoint azure-identity really talks to."""

from __future__ import annotations

import json
import secrets
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .http import Request, Response, parse_query

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class TLSMaterial:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate for CertificateCredential."""

    def __init__(self, directory: Path) -> None:
        import trustme

        self.ca = trustme.CA(organization_name="m365-migrate sandbox")
        self.server_cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.client_cert = self.ca.issue_cert("sandbox-client.m365-migrate.invalid", key_type=trustme.KeyType.RSA)
        self.ca_path = directory / "sandbox-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.client_cert_path = directory / "sandbox-client.pem"   # key + certificate, as CertificateCredential wants
        self.client_cert_path.write_bytes(self.client_cert.private_key_pem.bytes()
                                          + b"".join(b.bytes() for b in self.client_cert.cert_chain_pems))
        self.client_cert_path.chmod(0o600)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(ctx)
        return ctx

    def client_public_key(self) -> Any:
        from cryptography import x509

        return x509.load_pem_x509_certificate(self.client_cert.cert_chain_pems[0].bytes()).public_key()


def _json(status: int, body: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json.dumps(body).encode(), headers or [])


@dataclass
class Authority:
    """Issues and checks bearer tokens; `lifetime` is short when a test wants a refresh mid-run."""

    tenant_id: str
    client_id: str
    client_secret: str
    lifetime: int = 3600
    tls: TLSMaterial | None = None
    tokens: dict[str, float] = field(default_factory=dict)
    issued: int = 0

    def issue(self, lifetime: float | None = None) -> str:
        tok = "sbx." + secrets.token_urlsafe(24)
        self.tokens[tok] = time.time() + (self.lifetime if lifetime is None else lifetime)
        self.issued += 1
        return tok

    def check(self, header: str | None) -> str | None:
        """None when the Authorization header is good, else the 401 message."""
        if not header or not header.lower().startswith("bearer "):
            return "Access token is empty."
        exp = self.tokens.get(header[7:].strip())
        if exp is None:
            return "Access token validation failure. Invalid audience."
        if exp < time.time():
            return "Access token has expired or is not yet valid."
        return None

    def expire_all(self) -> None:
        for tok in self.tokens:
            self.tokens[tok] = 0.0

    # -------------------------------------------------------------- the token endpoint (auth listener)
    def handle(self, req: Request) -> Response:
        base = f"https://{req.host}"
        parts = [p for p in req.path.split("/") if p]
        if req.method == "GET" and parts[-2:] == [".well-known", "openid-configuration"]:
            tenant = parts[0]
            if tenant not in (self.tenant_id, "organizations", "common"):
                return _json(400, {"error": "invalid_tenant", "error_description": f"AADSTS90002: Tenant '{tenant}' not found."})
            v2 = "/v2.0" if "v2.0" in parts else ""
            return _json(200, {
                "token_endpoint": f"{base}/{self.tenant_id}/oauth2{v2}/token",
                "authorization_endpoint": f"{base}/{self.tenant_id}/oauth2{v2}/authorize",
                "device_authorization_endpoint": f"{base}/{self.tenant_id}/oauth2{v2}/devicecode",
                "issuer": f"{base}/{self.tenant_id}{v2}",
                "jwks_uri": f"{base}/{self.tenant_id}/discovery{v2}/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "grant_types_supported": ["client_credentials"],
                "tenant_region_scope": "EU",
            })
        if req.method == "POST" and parts[-1:] == ["token"]:
            return self._token(req, parts[0], base + req.path)
        return _json(404, {"error": "not_found", "error_description": f"no such endpoint {req.path}"})

    def _token(self, req: Request, tenant: str, endpoint: str) -> Response:
        form = parse_query(req.body.decode("utf-8", "replace"))
        if tenant not in (self.tenant_id, "organizations"):
            return _json(400, {"error": "invalid_request", "error_description": f"AADSTS90002: Tenant '{tenant}' not found."})
        if form.get("grant_type") != "client_credentials":
            return _json(400, {"error": "unsupported_grant_type",
                               "error_description": "AADSTS70003: only client_credentials is supported here."})
        if form.get("client_id") != self.client_id:
            return _json(400, {"error": "unauthorized_client",
                               "error_description": f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found."})
        if "client_secret" in form:
            if not secrets.compare_digest(form["client_secret"], self.client_secret):
                return _json(401, {"error": "invalid_client",
                                   "error_description": "AADSTS7000215: Invalid client secret provided."})
        elif form.get("client_assertion_type") == JWT_BEARER and "client_assertion" in form:
            problem = self._check_assertion(form["client_assertion"])
            if problem:
                return _json(401, {"error": "invalid_client", "error_description": problem})
        else:
            return _json(401, {"error": "invalid_client",
                               "error_description": "AADSTS7000216: client_secret or client_assertion is required."})
        tok = self.issue()
        return _json(200, {"token_type": "Bearer", "expires_in": self.lifetime, "ext_expires_in": self.lifetime,
                           "access_token": tok})

    def _check_assertion(self, assertion: str) -> str | None:
        """A CertificateCredential's JWT must be signed by the sandbox's client certificate and name our client."""
        if self.tls is None:
            return "AADSTS700027: certificate credentials need the sandbox's TLS material."
        import jwt

        try:
            claims = jwt.decode(assertion, self.tls.client_public_key(), algorithms=["RS256", "PS256"],
                                options={"verify_aud": False})
        except jwt.PyJWTError as exc:
            return f"AADSTS700027: Client assertion failed signature validation ({exc})."
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return "AADSTS700023: Client assertion audience/issuer claim does not match."
        return None
