"""Ed25519 webhook signatures exactly as the Telnyx SDKs verify them.

Signed bytes: `"<timestamp>|<raw body>"`; header `telnyx-signature-ed25519` is the padded standard
base64 of the 64-byte signature; `telnyx-timestamp` is decimal Unix seconds. The public key is the
padded standard base64 of the raw 32-byte key (the form `TELNYX_PUBLIC_KEY` takes).
"""

from __future__ import annotations

import base64
import functools
import time
from dataclasses import dataclass

from nacl.signing import SigningKey, VerifyKey


@dataclass(frozen=True)
class KeyPair:
    seed_b64: str
    public_b64: str


def generate_key_pair() -> KeyPair:
    key = SigningKey.generate()
    return KeyPair(
        seed_b64=base64.b64encode(bytes(key)).decode(),
        public_b64=base64.b64encode(bytes(key.verify_key)).decode(),
    )


class Signer:
    """Signs webhook bodies with one organization's private key."""

    def __init__(self, seed_b64: str) -> None:
        self._key = SigningKey(base64.b64decode(seed_b64))

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._key.sign(ts.encode() + b"|" + body).signature
        return {
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            "telnyx-timestamp": ts,
        }


@functools.lru_cache(maxsize=1024)
def signer_for(seed_b64: str) -> Signer:
    """One `Signer` per seed: deriving the key from the seed costs more than a signature."""
    return Signer(seed_b64)


def verify(public_b64: str, body: bytes, headers: dict[str, str]) -> bool:
    """Check a signature the way receivers do (used by the web inbox and tests of our own)."""
    try:
        key = VerifyKey(base64.b64decode(public_b64, validate=True))
        sig = base64.b64decode(headers["telnyx-signature-ed25519"], validate=True)
        key.verify(headers["telnyx-timestamp"].encode() + b"|" + body, sig)
    except Exception:
        return False
    return True
