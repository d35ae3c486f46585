"""signalpost: a self-hosted messaging server that speaks the Telnyx Messaging API v2."""

__version__ = "0.1.0"
