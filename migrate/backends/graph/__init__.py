"""Microsoft Graph source: azure-identity sign-in, SDK discovery, raw-JSON delta, streamed downloads, permissions.

Public API: `open_source(settings) -> GraphSource` (the `Source` protocol), `GraphOptions`, `classify`.
"""

from __future__ import annotations

from migrate.backends.graph.client import classify
from migrate.backends.graph.source import GraphOptions, GraphSource, open_source

__all__ = ["GraphOptions", "GraphSource", "classify", "open_source"]
