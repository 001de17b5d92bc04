"""The migration steps over the Source and Target protocols only, grouped by capability.

`files/` (drives, copy, sync, versions), `shares/` (grants → shares), `groupware/` (calendars, contacts),
`mail/` (mailboxes → IMAP); the journey-wide parts (plan, cutover, discovery, the Graph meter and estimate,
progress) stay here.
"""
