"""Loopback-only sandboxes (a Graph tenant, a Nextcloud target) for demo, tests and benchmarks; import-light."""
