"""Pytest fixtures for the Graph sandbox tenant (registered from tests/conftest.py via pytest_plugins)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from migrate.sandbox.graph import GraphSandbox, TenantSpec

SMALL = dict(seed=7, users=4, sites=2, teams=1, files_per_drive=25, max_depth=3, no_mysite_users=1)


@pytest.fixture(scope="session")
def graph_sandbox() -> Iterator[GraphSandbox]:
    """A shared, read-only sandbox over plain http (tests that mutate use `graph_sandbox_factory`)."""
    with GraphSandbox(TenantSpec(**SMALL)) as g:
        yield g


@pytest.fixture(scope="session")
def graph_sandbox_tls() -> Iterator[GraphSandbox]:
    """A shared, read-only sandbox with Graph and downloads over HTTPS (trust `ca_path`)."""
    with GraphSandbox(TenantSpec(**SMALL), tls=True) as g:
        yield g


@pytest.fixture
def graph_sandbox_factory() -> Iterator[Callable[..., GraphSandbox]]:
    """Start private sandboxes (for mutations, faults, options); all are stopped after the test."""
    started: list[GraphSandbox] = []

    def make(spec: TenantSpec | None = None, **options: Any) -> GraphSandbox:
        g = GraphSandbox(spec or TenantSpec(**SMALL), **options).start()
        started.append(g)
        return g

    yield make
    for g in started:
        g.stop()


def graph_http(g: GraphSandbox, token: str | None = None, **kw: Any) -> httpx.Client:
    """A plain httpx client for `g` with a valid bearer token."""
    verify: Any = g.ca_path if g.graph_url.startswith("https") else True
    return httpx.Client(base_url=g.graph_url, headers={"Authorization": f"Bearer {token or g.issue_token()}"},
                        verify=verify, timeout=30, **kw)


@pytest.fixture
def graph_client(graph_sandbox: GraphSandbox) -> Iterator[httpx.Client]:
    with graph_http(graph_sandbox) as c:
        yield c
