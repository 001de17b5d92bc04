"""A faithful local Microsoft Graph (reference graph-api.md §10) for tests, benchmarks and `demo`.

In-process API (names are stable; the rest of the project codes against them)::

    from migrate.sandbox.graph import GraphSandbox, TenantSpec
    spec = TenantSpec(seed=7, users=5, sites=2, teams=2, files_per_drive=40, max_depth=4, large_file_mb=0,
                      awkward_names=True, shares=True, versions=True, onenote=True, no_mysite_users=1,
                      malware_files=1, mail_messages=6, mail_large_mb=0, mail_bulk=0, mail_archive_users=1,
                      mail_no_mailbox_users=0)
    with GraphSandbox(spec, tls=True, token_lifetime=3600, shuffle_delta=False, empty_pages=False,
                      enrichment=False, download_url_ttl=300, page_size=200,
                      delta_token_ttl=None, resync_code="resyncRequired", resync_inner=None,
                      mysite_error="404" | "404-file" | "400", ru_per_minute=None, ru_per_day=None,
                      block_after=100, block_seconds=60, mailbox_requests_per_10_minutes=10_000,
                      mailbox_concurrency=4, outlook_delay=0.0, licences=None, ignore_range=False) as g:
        g.graph_url, g.authority, g.tenant_id, g.client_id, g.client_secret, g.ca_path, g.client_cert_path
        g.download_url   # the pre-authenticated download host (another port, same scheme as graph_url)
        g.admin_url      # <graph host>/_sandbox: the same admin operations over HTTP (no auth)
        g.tenant         # generated Tenant (users, groups, sites, drive_list, drives{id: Drive})
        g.issue_token()  # a bearer token without OAuth2 (or use azure-identity against g.authority)
        g.truth()        # {drive_id: [{id, path, name, size, sha1, quickXorHash, listed_size,
                         #   listed_quickXorHash, enriched, mtime, mtime_iso, is_folder, is_package,
                         #   malware, versions, permissions, inherited_permissions}]}
        g.faults.set(route="content", status=429, rate=0.3, retry_after="2.5", seed=1, count=None,
                     reset_after=None, delay=0.0, bytes_per_second=None);  g.faults.clear()
        g.mutate.add_file(drive_id, "/parent/path", name, size) / add_folder(drive_id, parent_path, name)
        g.mutate.modify(drive_id, item_id, size=None) / rename(drive_id, item_id, name)
        g.mutate.move(drive_id, item_id, new_parent_id_or_path, name=None) / delete(drive_id, item_id)
        g.mutate.add_permission(drive_id, item_id, kind, user=upn, group=gid, roles=None, password=False,
                                expiration=None) / remove_permission(drive_id, item_id, permission_id)
        g.stats()        # {"requests": {route: n}, "status": {...}, "ru", "ru_by_route": {route: RU}, "ru_refused",
                         #  "throttled", "throttled_status": {"429": n, "503": n}, "blocked", "bytes_sent", "faults",
                         #  "mailboxes": {user id: {requests, throttled, over_concurrency, over_rate,
                         #  max_in_flight}}, "budget": {per_minute, per_day, used_minute, used_day, blocked, ...}}
        g.reset_stats()  # the books start over (the budget's windows do not)
        g.set_budget(per_minute=600, per_day=None, block_after=100, block_seconds=60, reset=False)
        g.set_outlook(per_10_minutes=10_000, concurrency=4, delay=0.0, retry_after=1.0)
        g.expire_delta_tokens()   # any older delta token or nextLink → 410 + Location (mail: 410 SyncStateNotFound)
        g.mail_truth(upn_or_id)  # [{id, folder, well_known, hidden, internet_message_id, subject, received, is_read,
                                 #   is_draft, flag, categories, last_verb, icon_index, size, sha256}] per message
        g.mailboxes.mailbox(user)  # a user's MailStore (folders, messages with their Envelope; generated lazily)
        g.mail_mutate("deliver", user=upn_or_id, folder="inbox", subject="…", kind="alt", sender=None, size_mb=0)
        g.mail_mutate("set_flags", user=…, message_id=…, is_read=None, flag=None, categories=None, last_verb=None)
        g.mail_mutate("move_message" | "delete_message", user=…, message_id=…[, folder=…])
        g.mail_mutate("add_folder", user=…, parent=…, name=…, hidden=False) / ("rename_folder", folder=…, name=…)
        g.mail_mutate("move_folder", user=…, folder=…, parent=…) / ("delete_folder", user=…, folder=…)
        g.mail_mutate("expire_delta", user=None, folder=None)   # one folder's, a mailbox's or every mail token
        g.mail_mutate("set_options", mime_mode="stable" | "regenerate" | "lf", conceal_reports=False)
          (folders by id, well-known name or "Inbox/Projekte" path; messages by immutable id; see mail_mutate.py)
        g.expire_access_tokens()  # every issued bearer token → 401 InvalidAuthenticationToken
        g.set_option(shuffle_delta=True, empty_pages=True, enrichment=True, download_url_ttl=1, ...)

JSON batching: `POST /v1.0/$batch` with up to 20 steps; each step is routed, authorised, faulted and charged
like a request of its own (a throttled step is a 429 entry with its Retry-After inside a 200 envelope); the
entries come back in reverse order, so clients must match them by id. The envelope counts as route "batch" and
costs no RU. Costs, budgets and blocking: `budget.py`; Outlook's per-mailbox limits: `outlook.py`.
Mail (mail_routes.py): /users/{u}/mailFolders[?includeHiddenFolders=true], /mailFolders/{id|well-known}[/childFolders
| /messages[/delta] | /messages/{id}], /mailFolders/delta, /users/{u}/messages[/{id}[/$value]] (the folder form of
$value answers 405), /reports/getMailboxUsageDetail(period='D7') → 302 → CSV with "Has Archive"; all mailbox
routes under the Outlook limits. POST /_sandbox/mail-mutate {"op": "deliver", ...} does what g.mail_mutate does.
Fault route names: see `faults.ROUTES` (batch, users, user, groups, group, sites, site, drive, drives, item,
children, delta, content, download, permissions, versions, version_content, token, or "*").
Admin HTTP routes on the Graph port: GET|DELETE /_sandbox/stats, GET|POST /_sandbox/budget, GET|POST
/_sandbox/outlook, GET /_sandbox/truth, GET|POST|DELETE
/_sandbox/faults, POST /_sandbox/mutate {"op": "add_file", ...}, POST /_sandbox/expire-delta-tokens,
POST /_sandbox/expire-access-tokens, POST /_sandbox/token {"lifetime": s}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .generate import TenantSpec
    from .server import GraphSandbox

__all__ = ["GraphSandbox", "TenantSpec"]


def __getattr__(name: str) -> Any:
    if name == "GraphSandbox":
        from .server import GraphSandbox

        return GraphSandbox
    if name == "TenantSpec":
        from .generate import TenantSpec

        return TenantSpec
    raise AttributeError(name)
