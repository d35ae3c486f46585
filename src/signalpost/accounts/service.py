"""Organizations and API keys: bootstrap, creation, revocation, authentication."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.engine import RowMapping

from signalpost.accounts import repository as repo
from signalpost.kit import ids
from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.signing import EXTERNAL_SEED, KeyPair, generate_key_pair

DEFAULT_ORGANIZATION = "default"


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    public_key: str
    signing_seed: str


@dataclass(frozen=True)
class Bootstrap:
    organization: Organization
    api_key: str | None  # the key, when one was created or registered now


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _org(r: RowMapping) -> Organization:
    return Organization(
        id=r["id"], name=r["name"], public_key=r["public_key"], signing_seed=r["signing_seed"]
    )


async def create_organization(uow: UnitOfWork, name: str) -> Organization:
    pair = generate_key_pair()
    org_id = ids.new_uuid()
    await repo.insert_organization(
        uow,
        {
            "id": org_id,
            "name": name,
            "signing_seed": pair.seed_b64,
            "public_key": pair.public_b64,
            "created_at": utcnow(),
        },
    )
    return Organization(org_id, name, pair.public_b64, pair.seed_b64)


async def add_api_key(uow: UnitOfWork, organization_id: str, key: str | None = None) -> str:
    """Store a key (hashed) for the organization and return it; a new random key unless given."""
    key = key or ids.api_key()
    await repo.insert_api_key(
        uow,
        {
            "id": ids.new_uuid(),
            "organization_id": organization_id,
            "key_hash": hash_key(key),
            "prefix": key[:10],
            "created_at": utcnow(),
        },
    )
    return key


async def bootstrap(
    uow: UnitOfWork, fixed_key: str | None, signing_key: KeyPair | None = None
) -> Bootstrap:
    """On an empty database create the default organization, its key pair and an API key.

    A fixed key (`SIGNALPOST_API_KEY`) is registered for the default organization if it is not
    known yet, so scripts and CI can use a key they chose. A signing key from the settings
    (`signing_key`, `signing_key_file`) becomes the default organization's: its public key is
    stored, its private key is not (webhooks are signed with the one in the settings).
    """
    created_key: str | None = None
    org_row = await repo.default_organization(uow)
    if org_row is None:
        org = await create_organization(uow, DEFAULT_ORGANIZATION)
        created_key = await add_api_key(uow, org.id, fixed_key)
    else:
        org = _org(org_row)
        if fixed_key and not await repo.key_exists(uow, hash_key(fixed_key)):
            created_key = await add_api_key(uow, org.id, fixed_key)
    if signing_key is not None:
        if (org.public_key, org.signing_seed) != (signing_key.public_b64, EXTERNAL_SEED):
            await repo.set_signing_key(uow, org.id, signing_key.public_b64, EXTERNAL_SEED)
        org = Organization(org.id, org.name, signing_key.public_b64, EXTERNAL_SEED)
    elif org.signing_seed == EXTERNAL_SEED:
        raise ValueError(
            "the default organization's webhook signing key comes from the settings "
            "(signing_key or signing_key_file), and neither is set"
        )
    return Bootstrap(org, created_key)


async def authenticate(uow: UnitOfWork, key: str) -> Organization | None:
    row = await repo.organization_for_key(uow, hash_key(key))
    return _org(row) if row else None


async def find_organization(uow: UnitOfWork, name_or_id: str | None) -> Organization | None:
    row = (
        await repo.find_organization(uow, name_or_id)
        if name_or_id
        else await repo.default_organization(uow)
    )
    return _org(row) if row else None
