"""CalDAV/CardDAV target (Nextcloud or any RFC 4791/6352 server) for calendars and contacts."""

from migrate.backends.dav.target import DavTarget, PutResult, open_dav_target

__all__ = ["DavTarget", "PutResult", "open_dav_target"]
