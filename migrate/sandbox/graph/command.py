"""`m365-migrate sandbox graph`: serve the Graph sandbox tenant and print its connection details as JSON."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import typer


def _interrupt(*_: object) -> None:
    """SIGTERM ends the server like Ctrl-C does."""
    raise KeyboardInterrupt


def graph_command(
    port: int = typer.Option(0, help="Graph port on 127.0.0.1 (0 = any free port)."),
    tenant: Path | None = typer.Option(None, "--tenant", help="JSON or TOML file with TenantSpec fields."),
    users: int = typer.Option(5, help="Users (the last --no-mysite-users have no OneDrive)."),
    sites: int = typer.Option(2, help="SharePoint sites (each with 1–3 libraries)."),
    teams: int = typer.Option(2, help="Teams (groups with a group drive)."),
    files_per_drive: int = typer.Option(40, help="Generated files per drive."),
    max_depth: int = typer.Option(4, help="Deepest generated folder level."),
    large_file_mb: int = typer.Option(0, help="Size of the large file in the first OneDrive and library."),
    seed: int = typer.Option(7, help="Same seed, same tenant and same fault sequence."),
    no_mysite_users: int = typer.Option(1, help="Users without a OneDrive."),
    tls: bool = typer.Option(False, "--tls", help="Serve Graph and downloads over HTTPS (the token endpoint "
                                                  "always is); trust ca_path."),
    token_lifetime: int = typer.Option(3600, help="Access-token lifetime in seconds."),
    download_url_ttl: float = typer.Option(300, help="Lifetime of pre-authenticated download URLs, seconds."),
    shuffle_delta: bool = typer.Option(False, help="Shuffle items within delta pages."),
    empty_pages: bool = typer.Option(False, help="Send an empty delta page (with nextLink) before each page."),
    enrichment: bool = typer.Option(False, help="Office files in libraries download with other bytes."),
    fault: list[str] = typer.Option([], "--fault", help='A fault rule as JSON, repeatable, e.g. '
                                    '\'{"route": "content", "status": 429, "rate": 0.2, "retry_after": "1.5"}\'.'),
    ru_per_minute: float = typer.Option(0, help="SharePoint resource-unit budget per minute (0 = unlimited)."),
    ru_per_day: float = typer.Option(0, help="SharePoint resource-unit budget per 24 hours (0 = unlimited)."),
    block_after: int = typer.Option(100, help="Requests sent while told to wait (within 60 s) that get the app "
                                              "blocked (0 = never block)."),
    block_seconds: float = typer.Option(60, help="How long a block lasts (every request 503)."),
    mailbox_requests: int = typer.Option(10_000, help="Outlook requests per mailbox per 10 minutes."),
    mailbox_concurrency: int = typer.Option(4, help="Outlook requests in flight per mailbox."),
    outlook_delay: float = typer.Option(0, help="Seconds each mailbox (calendar, contact, mail) answer is held back."),
    licences: int = typer.Option(0, help="Licences /subscribedSkus reports (0 = the tenant spec's, 60,000)."),
) -> None:
    """Run the Graph sandbox tenant on 127.0.0.1 until interrupted; prints one JSON line to connect with."""
    from .generate import TenantSpec
    from .server import GraphSandbox

    if tenant is not None:
        text = tenant.read_text(encoding="utf-8")
        if tenant.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
        spec = TenantSpec.from_dict(data)
    else:
        spec = TenantSpec(seed=seed, users=users, sites=sites, teams=teams, files_per_drive=files_per_drive,
                          max_depth=max_depth, large_file_mb=large_file_mb, no_mysite_users=no_mysite_users)
    g = GraphSandbox(spec, tls=tls, port=port, token_lifetime=token_lifetime, download_url_ttl=download_url_ttl,
                     shuffle_delta=shuffle_delta, empty_pages=empty_pages, enrichment=enrichment,
                     faults=[json.loads(f) for f in fault], ru_per_minute=ru_per_minute or None,
                     ru_per_day=ru_per_day or None, block_after=block_after, block_seconds=block_seconds,
                     mailbox_requests_per_10_minutes=mailbox_requests, mailbox_concurrency=mailbox_concurrency,
                     outlook_delay=outlook_delay, licences=licences or None)
    g.start()
    info = g.info()
    if not tls:
        info.pop("ca_path")
        info["authority_ca_path"] = g.ca_path
    print(json.dumps(info), flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        g.serve_forever()
    finally:
        g.stop()
        sys.stdout.flush()
