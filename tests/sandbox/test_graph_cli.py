"""`m365-migrate sandbox graph` as a real subprocess: the JSON line, a token from the authority, one call."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx


def _start(*args: str) -> tuple[subprocess.Popen, dict]:
    exe = Path(sys.executable).with_name("m365-migrate")
    proc = subprocess.Popen([str(exe), "sandbox", "graph", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return proc, json.loads(line)


def test_cli_serves_over_tls_until_terminated(tmp_path):
    spec = tmp_path / "tenant.json"
    spec.write_text(json.dumps({"seed": 5, "users": 2, "sites": 1, "teams": 1, "files_per_drive": 5}))
    proc, info = _start("--port", "0", "--tenant", str(spec), "--tls")
    try:
        assert set(info) >= {"graph_url", "authority", "tenant_id", "client_id", "client_secret", "ca_path"}
        assert info["graph_url"].startswith("https://127.0.0.1:") and info["authority"].startswith("https://")
        with httpx.Client(verify=info["ca_path"]) as c:
            tok = c.post(f"{info['authority']}/{info['tenant_id']}/oauth2/v2.0/token",
                         data={"grant_type": "client_credentials", "client_id": info["client_id"],
                               "client_secret": info["client_secret"],
                               "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
            users = c.get(info["graph_url"] + "/users", headers={"Authorization": f"Bearer {tok}"}).json()
        assert len(users["value"]) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_cli_plain_http_with_generator_flags():
    proc, info = _start("--users", "3", "--sites", "1", "--teams", "0", "--files-per-drive", "3", "--seed", "9",
                        "--fault", '{"route": "users", "status": 429, "retry_after": "1.5", "count": 1}')
    try:
        assert info["graph_url"].startswith("http://127.0.0.1:") and "ca_path" not in info
        tok = httpx.post(info["admin_url"] + "/token", json={}).json()["access_token"]
        first = httpx.get(info["graph_url"] + "/users", headers={"Authorization": f"Bearer {tok}"})
        assert first.status_code == 429 and first.headers["Retry-After"] == "1.5"
        r = httpx.get(info["graph_url"] + "/users", headers={"Authorization": f"Bearer {tok}"})
        assert [u["id"] for u in r.json()["value"]] and len(r.json()["value"]) == 3
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) in (0, 130)
