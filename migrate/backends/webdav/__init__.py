"""Generic WebDAV target (webdav4); `wire` and `session` are shared with the Nextcloud target."""
