"""Helpers for mail tests against the Graph sandbox: a real GraphClient on loopback, and the sandbox's truth."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from migrate.backends.graph.auth import TokenProvider
from migrate.backends.graph.client import GraphClient
from migrate.sandbox.graph import GraphSandbox, TenantSpec, mail_mime
from migrate.transport.pacer import Pacer

MAIL_SPEC = dict(seed=11, users=3, sites=0, teams=0, files_per_drive=1, no_mysite_users=0, groupware_events=0,
                 groupware_contacts=0)


def spec(**changes: Any) -> TenantSpec:
    return TenantSpec(**{**MAIL_SPEC, **changes})


class _Credential:
    """Tokens straight from the sandbox (no OAuth2 round trip)."""

    def __init__(self, g: GraphSandbox) -> None:
        self.g = g

    def get_token(self, *scopes: str) -> Any:
        return SimpleNamespace(token=self.g.issue_token(), expires_on=time.time() + 3600)


def graph_client(g: GraphSandbox, **pacer: Any) -> GraphClient:
    tokens = TokenProvider(lambda: _Credential(g), "https://graph.microsoft.com/.default")
    return GraphClient(g.graph_url, tokens, Pacer("graph", base_delay=0.05, **pacer),
                       ca_bundle=g.ca_path if g.graph_url.startswith("https") else None)


def mime_of(g: GraphSandbox, user_id: str, message_id: str) -> bytes:
    """The bytes the sandbox serves for a small message (its own renderer, variant 0)."""
    def get() -> bytes:
        box = g.mailboxes.mailbox(g.tenant.user_by_id(user_id))
        return mail_mime.render(box.messages[message_id].env)
    return g.call(get)


def folder_messages(g: GraphSandbox, user_id: str, folder: str) -> dict[str, Any]:
    """{immutable id: sandbox Message} of one folder (by id, well-known name or path)."""
    def get() -> dict[str, Any]:
        box = g.mailboxes.mailbox(g.tenant.user_by_id(user_id))
        f = box.folder(folder) or box.by_path(folder)
        assert f is not None, folder
        return {m.id: m for m in box.in_folder(f.id)}
    return g.call(get)
