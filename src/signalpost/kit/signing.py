"""Ed25519 webhook signatures exactly as the Telnyx SDKs verify them.

Signed bytes: `"<timestamp>|<raw body>"`; header `telnyx-signature-ed25519` is the padded standard
base64 of the 64-byte signature; `telnyx-timestamp` is decimal Unix seconds. The public key is the
padded standard base64 of the raw 32-byte key (the form `TELNYX_PUBLIC_KEY` takes).
"""

from __future__ import annotations

import base64
import binascii
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


# Stored in place of an organization's seed when its key is given in the settings instead
# (`signing_key`): the database never holds it.
EXTERNAL_SEED = "external"
# DER of a PKCS#8 Ed25519 private key (RFC 8410), up to the 32-byte seed that ends it.
_PKCS8_ED25519_PREFIX = bytes.fromhex("302e020100300506032b657004220420")


def parse_private_key(text: str) -> KeyPair:
    """An Ed25519 private key: base64 of the 32-byte seed (or of the 64-byte seed + public key),
    or a PEM `PRIVATE KEY` block (PKCS#8). The error names the problem, never the key."""
    body = text.strip()
    if body.startswith("-----BEGIN PRIVATE KEY-----"):
        lines = [ln for ln in body.splitlines() if ln and not ln.startswith("-----")]
        body = "".join(lines)
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signing key is not base64 or PEM") from None
    if len(raw) == 48 and raw.startswith(_PKCS8_ED25519_PREFIX):
        raw = raw[len(_PKCS8_ED25519_PREFIX) :]
    if len(raw) == 64:
        raw = raw[:32]
    if len(raw) != 32:
        raise ValueError("the signing key is not an Ed25519 private key (32-byte seed)")
    key = SigningKey(raw)
    return KeyPair(
        seed_b64=base64.b64encode(raw).decode(),
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
