"""Sharing: source grants planned into target shares (never broader), created, accepted, kept in step."""
