"""Retention: rows older than `SIGNALPOST_RETENTION_DAYS` purged in the background."""
