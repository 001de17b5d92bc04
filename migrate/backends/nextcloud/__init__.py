"""Nextcloud target: capabilities, chunked upload v2, bulk upload, mtime and checksums, OCS shares, users and
groups, team folders. `target.NextcloudTarget` is the entry point (usually through `backends.open_target`)."""
