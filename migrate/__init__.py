"""m365-migrate: move Microsoft 365 files into Nextcloud or any WebDAV server, resumably and verifiably."""

__version__ = "0.1.0"
