"""runbooks/mail.md runs: every `sh` command block, in order, against the Graph sandbox and a real Dovecot.

The human steps between them (filling in [mail], mapping users, people working in Outlook, the MX switch) are
done here where the runbook says a person does them; every command exits 0, except `plan`, whose 3 means "read
the list" (the sandbox's first user has an online archive)."""

from __future__ import annotations

import shlex

from migrate.sandbox.graph import GraphSandbox
from tests.conftest import REPO, run_cli
from tests.mail_e2e_support import server_messages, setup_mail
from tests.mail_graph_support import spec
from tests.test_runbook import commands

RUNBOOK = REPO / "runbooks" / "mail.md"


def test_the_mail_runbook_runs_in_order(tmp_path, dovecot):
    cmds = commands(RUNBOOK.read_text())
    assert all(c.startswith("m365-migrate ") for c in cmds)
    assert any(c.startswith("m365-migrate cutover") for c in cmds)
    user = dovecot.fresh_user()
    with GraphSandbox(spec(users=1)) as g:
        env, (upn,) = setup_mail(tmp_path, g, dovecot, [user])     # steps 1-4: configured by the operator
        users = tmp_path / "mappings" / "users.csv"
        users.write_text(users.read_text().replace(",wave1", ",pilot"))
        ran = []
        for cmd in cmds:
            args = shlex.split(cmd)[1:]
            if args[0] == "sync":   # people keep working in Outlook
                g.mail_mutate("deliver", user=upn, folder="inbox", subject="Neue Post in der Vorbereitung")
            if args[0] == "cutover":   # mail reaching Exchange while the MX change spreads
                g.mail_mutate("deliver", user=upn, folder="inbox", subject="Kurz vor dem Umzug")
            r = run_cli(*args, cwd=tmp_path, env=env)
            allowed = (0, 3) if args[0] == "plan" else (0,)
            assert r.returncode in allowed, f"runbook step `{cmd}` exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
            ran.append(args[0])
        assert ran[-1] == "audit" and "cutover" in ran
        subjects = dovecot.doveadm("-f", "tab", "fetch", "-u", user, "hdr.subject", "mailbox", "INBOX", "all")
        assert "Neue Post in der Vorbereitung" in subjects and "Kurz vor dem Umzug" in subjects
        assert "Sent" in server_messages(dovecot, user) and "Sent Items" not in server_messages(dovecot, user)
        assert "mail.append" in (tmp_path / "mail-audit.csv").read_text()
