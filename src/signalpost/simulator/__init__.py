"""The carrier simulator's own endpoints and commands: chaos, handset messages, handset replies.

The simulated network itself is a carrier adapter (`signalpost.carriers.simulator`); this package is
the feature above it and `messages/` that drives it from HTTP, the CLI and jobs.
"""
