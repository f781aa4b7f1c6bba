"""Secrets at rest: envelope encryption of small records (payout bank accounts).

Each record is encrypted with a fresh 256-bit data key (AES-GCM); the data key is
encrypted ("wrapped") with a key-encryption key (KEK) named by a key id, and the sealed
record carries that id. Rotating means adding a new KEK in front of the list: new records
use it, old ones still open with theirs, and ``rewrap`` moves a record to the current KEK
by re-wrapping its data key only (the record's ciphertext is unchanged).

Both layers are authenticated: the data layer binds the record to a context (``aad``,
such as the owner's id), so a ciphertext copied to another owner's row does not open; the
key layer binds the wrapped key to its key id. Any tampering is ``VaultError``.

``LocalKeyVault`` keeps the KEKs in memory, from the ``PAYOUT_ACCOUNT_KEYS`` setting. A KMS
adapter (AWS KMS ``GenerateDataKey``/``Decrypt``) implements the same ``Vault`` protocol.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: The sealed form's version: ``v1.<key id>.<wrapped data key>.<ciphertext>`` (base64url).
VERSION = "v1"
NONCE_BYTES = 12
KEY_BYTES = 32
KEY_ID_MAX = 32


class VaultError(Exception):
    """A sealed record that does not open: unknown key id, wrong context, or tampered."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    blob: str


class Vault(Protocol):
    """Seal and open small secrets; rewrap to the current key."""

    @property
    def current_key_id(self) -> str: ...
    @property
    def key_ids(self) -> list[str]:
        """Every key id this vault opens, the current one first."""
    def seal(self, plaintext: bytes, *, aad: bytes) -> Sealed: ...
    def open(self, blob: str, *, aad: bytes) -> bytes: ...
    def rewrap(self, blob: str) -> Sealed: ...


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_keys(spec: str) -> dict[str, bytes]:
    """``"kid1:<base64 32 bytes>,kid2:..."`` to an ordered mapping, the current key first.

    Errors never quote the key material."""
    keys: dict[str, bytes] = {}
    for n, part in enumerate(p.strip() for p in spec.split(",") if p.strip()):
        kid, sep, material = part.partition(":")
        kid = kid.strip()
        if not sep or not kid or len(kid) > KEY_ID_MAX or not kid.replace("-", "").replace(
                "_", "").isalnum() or not kid.isascii():
            raise ValueError(f"key {n + 1} needs an id of letters, digits, - and _ "
                             f"(at most {KEY_ID_MAX}) before ':'")
        try:
            key = base64.b64decode(material.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"key {kid!r} is not base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"key {kid!r} must be {KEY_BYTES} bytes (base64 of 32 random bytes)")
        if kid in keys:
            raise ValueError(f"key id {kid!r} appears twice")
        keys[kid] = key
    return keys


def new_key_spec(key_id: str) -> str:
    """A fresh ``<key id>:<base64 key>`` entry for ``PAYOUT_ACCOUNT_KEYS``."""
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


class LocalKeyVault:
    """KEKs held in memory; the first is current."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("a vault needs at least one key")
        self._keys = dict(keys)
        self._current = next(iter(keys))

    def __repr__(self) -> str:  # never the keys
        return f"LocalKeyVault(key_ids={list(self._keys)!r})"

    @property
    def current_key_id(self) -> str:
        return self._current

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def _wrap(self, kid: str, data_key: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        return _b64(nonce + AESGCM(self._keys[kid]).encrypt(nonce, data_key, kid.encode()))

    def _unwrap(self, kid: str, wrapped: str) -> bytes:
        kek = self._keys.get(kid)
        if kek is None:
            raise VaultError(f"key id {kid!r} is not configured")
        raw = _unb64(wrapped)
        return AESGCM(kek).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], kid.encode())

    def seal(self, plaintext: bytes, *, aad: bytes) -> Sealed:
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        nonce = os.urandom(NONCE_BYTES)
        body = _b64(nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad))
        kid = self._current
        return Sealed(kid, ".".join((VERSION, kid, self._wrap(kid, data_key), body)))

    def _parts(self, blob: str) -> tuple[str, str, str]:
        parts = blob.split(".")
        if len(parts) != 4 or parts[0] != VERSION:
            raise VaultError("not a sealed record of this vault")
        return parts[1], parts[2], parts[3]

    def open(self, blob: str, *, aad: bytes) -> bytes:
        kid, wrapped, body = self._parts(blob)
        try:
            data_key = self._unwrap(kid, wrapped)
            raw = _unb64(body)
            return AESGCM(data_key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise VaultError("the sealed record does not open (tampered or wrong context)"
                             ) from exc

    def rewrap(self, blob: str) -> Sealed:
        """The same record with its data key wrapped by the current KEK."""
        kid, wrapped, body = self._parts(blob)
        if kid == self._current:
            return Sealed(kid, blob)
        try:
            data_key = self._unwrap(kid, wrapped)
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise VaultError("the wrapped data key does not open") from exc
        kid = self._current
        return Sealed(kid, ".".join((VERSION, kid, self._wrap(kid, data_key), body)))


def vault_from_setting(spec: str) -> LocalKeyVault | None:
    """The vault ``PAYOUT_ACCOUNT_KEYS`` describes; None when it is empty."""
    keys = parse_keys(spec)
    return LocalKeyVault(keys) if keys else None
