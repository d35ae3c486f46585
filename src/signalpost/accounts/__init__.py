"""Organizations, API keys and the authentication dependency."""
