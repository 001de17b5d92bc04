"""Check every mapped user's app password once, one user at a time, before any byte moves (reference §8.2).

Nextcloud blocks *every* login from an address after 10 failed ones (the 12th request is a 429, even with valid
credentials), so the check is serial and stops after MAX_FAILURES wrong passwords; the users left are reported
as unchecked. With an admin service account, unknown users are found by a provisioning read first, which costs
no failed login.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from migrate.backends.nextcloud.dav import NextcloudDav, reveal
from migrate.backends.nextcloud.provisioning import Provisioning
from migrate.errors import MigrateError

MAX_FAILURES = 3


@dataclass(frozen=True, slots=True)
class CredentialProblem:
    """One user whose credentials cannot be used; `kind` is missing | wrong-password | unknown-user |
    blocked | unchecked | error."""

    user: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.user}: {self.message}"


def validate_credentials(dav: NextcloudDav, users: Iterable[str], *, admin: str | None = None,
                         max_failures: int = MAX_FAILURES) -> list[CredentialProblem]:
    """All problems found, in user order; an empty list means every user can log in and reach its files."""
    problems: list[CredentialProblem] = []
    failures = 0
    stop_reason = ""
    prov = Provisioning(dav, admin) if admin and admin in dav.passwords else None
    for user in dict.fromkeys(users):
        pw = dav.passwords.get(user)
        if pw is None or not reveal(pw):
            problems.append(CredentialProblem(user, "missing", "no app password in the credentials file"))
            continue
        if stop_reason:
            problems.append(CredentialProblem(user, "unchecked", f"not checked: {stop_reason}"))
            continue
        if prov is not None and user != admin:
            try:
                exists = prov.user_exists(user)
            except MigrateError as exc:
                exists = True  # cannot tell; the login below will say
                problems.append(CredentialProblem(admin or "", "error", f"user lookup failed: {exc.message}"))
                prov = None
            if not exists:
                problems.append(CredentialProblem(user, "unknown-user", "no such user on the Nextcloud server"))
                continue
        resp = dav.session.send("PROPFIND", dav.files_url(user), auth=dav.auth(user), user=user,
                                what=f"check credentials of {user}", headers={"Depth": "0"}, check=False)
        code = resp.status_code
        if code == 207:
            continue
        if code == 401:
            failures += 1
            problems.append(CredentialProblem(user, "wrong-password",
                                              "the app password was refused (wrong, revoked, or no such user)"))
            if failures >= max_failures:
                stop_reason = (f"stopped after {failures} refused passwords, before Nextcloud's brute-force "
                               "protection blocks this address")
        elif code == 404:
            problems.append(CredentialProblem(user, "unknown-user",
                                              "logged in, but no files home with this user id (uid differs from "
                                              "the login name?)"))
        elif code == 429:
            problems.append(CredentialProblem(user, "blocked", "this address is blocked by brute-force protection"))
            stop_reason = "the server blocks logins from this address (`occ security:bruteforce:reset <ip>`)"
        else:
            problems.append(CredentialProblem(user, "error", f"unexpected HTTP {code} when checking"))
    return problems
