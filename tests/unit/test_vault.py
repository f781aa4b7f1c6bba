"""The payout account vault (adapters/security/vault.py): envelope encryption that opens
only in its context, rotates by key id, detects tampering, and never shows a key."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from missionlink.adapters.security.vault import (
    LocalKeyVault,
    VaultError,
    new_key_spec,
    parse_keys,
    vault_from_setting,
)
from missionlink.config import Settings

OLD = base64.b64encode(b"o" * 32).decode()
NEW = base64.b64encode(b"n" * 32).decode()


def _vault(spec: str) -> LocalKeyVault:
    vault = vault_from_setting(spec)
    assert vault is not None
    return vault


def test_a_sealed_record_opens_in_its_context_and_carries_its_key_id() -> None:
    vault = _vault(f"k1:{OLD}")
    sealed = vault.seal("110123456789 홍길동".encode(), aad=b"payout-account:7")
    assert sealed.key_id == "k1" and sealed.blob.startswith("v1.k1.")
    assert b"110123456789" not in sealed.blob.encode()
    assert vault.open(sealed.blob, aad=b"payout-account:7") == "110123456789 홍길동".encode()
    with pytest.raises(VaultError):
        vault.open(sealed.blob, aad=b"payout-account:8")  # copied to another user's row


def test_rotation_opens_old_records_and_rewraps_them_to_the_current_key() -> None:
    old = _vault(f"k1:{OLD}").seal(b"secret", aad=b"a")
    rotated = _vault(f"k2:{NEW},k1:{OLD}")
    assert rotated.current_key_id == "k2"
    assert rotated.open(old.blob, aad=b"a") == b"secret"
    moved = rotated.rewrap(old.blob)
    assert moved.key_id == "k2" and moved.blob.startswith("v1.k2.")
    assert moved.blob.split(".")[3] == old.blob.split(".")[3]  # the data stays as it was
    assert _vault(f"k2:{NEW}").open(moved.blob, aad=b"a") == b"secret"  # k1 retired
    assert rotated.rewrap(moved.blob) == moved
    with pytest.raises(VaultError, match="not configured"):
        _vault(f"k2:{NEW}").open(old.blob, aad=b"a")


@pytest.mark.parametrize("part", [1, 2, 3])
def test_any_tampering_is_detected(part: int) -> None:
    vault = _vault(f"k2:{NEW},k1:{OLD}")
    parts = vault.seal(b"secret", aad=b"a").blob.split(".")
    if part == 1:
        parts[1] = "k1"  # a wrapped key claimed to be under another key id
    else:
        raw = bytearray(base64.urlsafe_b64decode(parts[part] + "=" * (-len(parts[part]) % 4)))
        raw[-1] ^= 1
        parts[part] = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(VaultError):
        vault.open(".".join(parts), aad=b"a")


def test_key_errors_name_the_key_id_never_the_key() -> None:
    assert vault_from_setting("") is None
    # The AWS Data stack's placeholder (Secrets Manager stores no empty string): payouts off.
    assert vault_from_setting(" ") is None
    assert list(parse_keys(f" k2:{NEW} , k1:{OLD} ")) == ["k2", "k1"]
    assert len(parse_keys(new_key_spec("dev1"))["dev1"]) == 32
    short = base64.b64encode(b"tooshort-secret").decode()
    with pytest.raises(ValueError, match="'k1' must be 32 bytes") as caught:
        parse_keys(f"k1:{short}")
    assert short not in str(caught.value)
    with pytest.raises(ValueError, match="appears twice"):
        parse_keys(f"k1:{OLD},k1:{NEW}")
    assert OLD not in repr(_vault(f"k1:{OLD}"))


def test_settings_hide_the_key_setting_in_errors_and_logs() -> None:
    secret = base64.b64encode(b"secret-key-material").decode()
    with pytest.raises(ValidationError) as caught:
        Settings(payout_account_keys=f"k1:{secret}")  # type: ignore[arg-type]
    assert secret not in str(caught.value) and "k1" in str(caught.value)
    settings = Settings(payout_account_keys=f"k1:{OLD}")  # type: ignore[arg-type]
    assert OLD not in repr(settings) and OLD not in str(settings.model_dump())
