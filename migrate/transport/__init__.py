"""Everything between our code and the wire: pacing and retries, HTTP clients, hashing streams."""
