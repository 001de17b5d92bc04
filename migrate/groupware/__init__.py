"""Groupware: Exchange Online calendars and contacts mapped to iCalendar/vCard (pure functions, no I/O)."""
