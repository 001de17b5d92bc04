"""Rendering of reports and summaries: Markdown, HTML, CSV, JSON and terminal text."""
