"""Files: drives enumerated, laid out, copied, verified and kept in step (with their version history)."""
