"""The migration steps (scan, plan, copy, verify, ...) over the Source and Target protocols only."""
