"""`m365-migrate sandbox nextcloud` prints one JSON line and serves until interrupted (issue 4)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests


def test_cli_prints_json_and_serves(tmp_path):
    """The JSON line carries the URL, admin and per-user app passwords; the server answers as the reference's
    detection sequence expects (§10.1) and honours --groups/--quota-mb (§6.6); SIGINT stops it cleanly."""
    exe = Path(sys.executable).with_name("m365-migrate")
    proc = subprocess.Popen([str(exe), "sandbox", "nextcloud", "--port", "0", "--users", "alice,bob",
                             "--groups", "staff:alice,bob", "--quota-mb", "5", "--data", str(tmp_path / "data"),
                             "--force-share-accept"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert info["url"].startswith("http://127.0.0.1:")
        assert set(info["users"]) == {"alice", "bob"} and info["admin"]["user"] == "admin"
        assert requests.get(info["url"] + "/status.php", timeout=5).json()["productname"] == "Nextcloud"
        auth = ("admin", info["admin"]["app_password"])
        r = requests.get(info["url"] + "/ocs/v2.php/cloud/users/alice?format=json", auth=auth,
                         headers={"OCS-APIRequest": "true"}, timeout=5)
        data = r.json()["ocs"]["data"]
        assert data["quota"]["quota"] == 5 * 1024 * 1024 and data["groups"] == ["staff"]
        r = requests.put(info["url"] + "/remote.php/dav/files/bob/x.txt", data=b"x",
                         auth=("bob", info["users"]["bob"]), timeout=5)
        assert r.status_code == 201 and (tmp_path / "data/users/bob/files/x.txt").exists()
        # --force-share-accept: a new share waits for its recipient
        ocs = {"OCS-APIRequest": "true"}
        shares = info["url"] + "/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json"
        made = requests.post(shares, data={"path": "/x.txt", "shareType": 0, "shareWith": "alice"}, headers=ocs,
                             auth=("bob", info["users"]["bob"]), timeout=5).json()["ocs"]["data"]
        pending = requests.get(shares.replace("shares?", "shares/pending?"), headers=ocs,
                               auth=("alice", info["users"]["alice"]), timeout=5).json()["ocs"]["data"]
        assert [p["id"] for p in pending] == [made["id"]]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.stderr.close()
    assert proc.returncode in (0, 130)


def test_cli_rejects_bad_group_spec():
    """A malformed --groups is a usage error (exit 2) that names the option."""
    exe = Path(sys.executable).with_name("m365-migrate")
    r = subprocess.run([str(exe), "sandbox", "nextcloud", "--groups", "nocolon"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "--groups" in r.stderr + r.stdout
