"""Prometheus `GET /metrics`: this process's HTTP counters and the shared state read from the database."""
