"""Calendars and contacts: read per mailbox, written over CalDAV/CardDAV, verified and kept in step."""
