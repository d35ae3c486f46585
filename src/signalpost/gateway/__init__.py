"""Gateway operations: what the carriers and their SMPP binds are doing (CLI and admin endpoint)."""
