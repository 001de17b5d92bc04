"""Start Apache httpd + mod_dav_fs on a free loopback port with a generated config (tests' and benchmarks' peer)."""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

APACHE = Path("/usr/sbin/apache2")
MODULES = Path("/usr/lib/apache2/modules")


class ApacheError(RuntimeError):
    """Apache could not be started (missing binary or a failed start; the message carries its log)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp: Path, port: int, docroot: Path, run_as: str | None) -> str:
    modules = ["mpm_event", "authz_core", "authn_core", "auth_basic", "authn_file", "authz_user", "dav", "dav_fs",
               "mime"]
    lines = [f"LoadModule {m}_module {MODULES}/mod_{m}.so" for m in modules]
    if run_as:
        lines += [f"User {run_as}", f"Group {run_as}"]
    lines += [
        f"ServerRoot {tmp}", "ServerName 127.0.0.1", f"Listen 127.0.0.1:{port}",
        f"PidFile {tmp}/httpd.pid", f"DefaultRuntimeDir {tmp}/run", f"ErrorLog {tmp}/error.log", "LogLevel warn",
        "TypesConfig /dev/null", "StartServers 1", "ServerLimit 2", "ThreadsPerChild 32", "MaxRequestWorkers 64",
        "LimitRequestBody 0", "KeepAlive On", f"DavLockDB {tmp}/lock/DavLock", f"DocumentRoot {docroot}",
        f'<Directory "{docroot}">', "  Dav On", "  Options None", "  AllowOverride None", "  AuthType Basic",
        '  AuthName "dav"', f"  AuthUserFile {tmp}/htpasswd", "  Require valid-user", "</Directory>",
    ]
    return "\n".join(lines) + "\n"


class ApacheDav:
    """Apache httpd serving WebDAV at `url` (a writable collection ending in '/') with Basic `auth`.

    Installs nothing. As root the workers run as www-data (Apache refuses to serve as root) and own the temporary
    root; as any other user Apache runs as that user.
    """

    def __init__(self) -> None:
        self.url = ""
        self.auth = ("davuser", "dav-" + base64.b32encode(os.urandom(10)).decode().lower())
        self.tmp: Path | None = None
        self.root = Path()
        self.error_log = Path()
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ApacheDav:
        if not APACHE.exists():
            raise ApacheError(f"{APACHE} is missing (install Debian's apache2 package)")
        tmp = self.tmp = Path(tempfile.mkdtemp(prefix="apache-dav-"))
        docroot = tmp / "htdocs"
        (docroot / "dav").mkdir(parents=True)
        (tmp / "run").mkdir()
        (tmp / "lock").mkdir()
        user, password = self.auth
        digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
        (tmp / "htpasswd").write_text(f"{user}:{{SHA}}{digest}\n")
        run_as = None
        if os.geteuid() == 0:
            run_as = "www-data"
            try:
                entry = pwd.getpwnam(run_as)
            except KeyError as exc:
                raise ApacheError("running as root needs the www-data account for Apache's workers") from exc
            tmp.chmod(0o755)
            for path in [tmp, *tmp.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        port = _free_port()
        conf = tmp / "httpd.conf"
        conf.write_text(_config(tmp, port, docroot, run_as))
        self.error_log = tmp / "error.log"
        self.root = docroot / "dav"
        self._proc = subprocess.Popen([str(APACHE), "-f", str(conf), "-DFOREGROUND"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE,
                                      env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"})
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    err = self._proc.stderr.read().decode() if self._proc.stderr and self._proc.poll() is not None \
                        else ""
                    log = self.error_log.read_text() if self.error_log.exists() else ""
                    self.stop()
                    raise ApacheError(f"Apache did not start: {err}\n{log}") from None
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port}/dav/"
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stderr:
                proc.stderr.close()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self) -> ApacheDav:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
