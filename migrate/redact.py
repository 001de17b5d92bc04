"""Keep secrets out of logs, reports and the database: tokens, passwords and pre-authenticated URLs."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    (re.compile(r"(?i)(authorization:\s*(?:bearer|basic)\s+)[^\s'\"]+"), r"\1***"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1***"),
    (re.compile(r"(?i)((?:access_token|refresh_token|client_secret|password|app_password|tempauth|sig|token)=)[^&\s'\"]+"), r"\1***"),
    (re.compile(r"(?i)(\"(?:access_token|client_secret|password|@microsoft\.graph\.downloadUrl)\"\s*:\s*\")[^\"]+"), r"\1***"),
    (re.compile(r"(https?://[^/\s'\"]+)(/[^\s'\"]*download[^\s'\"]*)", re.I), r"\1/<download-url>"),
]


def redact(text: str) -> str:
    """Replace anything that looks like a credential or a pre-authenticated URL with ***."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the final message, whatever was interpolated into it."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def setup_logging(verbosity: int) -> None:
    """-q → warnings only, default → info, -v → debug; every handler redacts."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbosity > 0 else "%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "azure", "msal", "urllib3", "cheroot", "wsgidav"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbosity < 2 else logging.DEBUG)
    # azure-identity logs every refused sign-in as a warning before raising it; our error says it once (with -v too)
    logging.getLogger("azure.identity").setLevel(logging.ERROR if verbosity < 2 else logging.DEBUG)
