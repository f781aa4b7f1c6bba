from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from missionlink.adapters.security import tokens
from missionlink.domain.errors import NotAuthenticated


def test_verified_tokens_are_cached_until_they_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    service = tokens.TokenService(Ed25519PrivateKey.generate(), issuer="i", audience="a",
                                  ttl_seconds=60)
    token = service.issue(7, "viewer", datetime.now(UTC))
    first = service.verify(token)
    decodes = 0
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal decodes
        decodes += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting_decode)
    assert service.verify(token) is first and decodes == 0  # served from the cache
    real = time.time()
    monkeypatch.setattr(tokens.time, "time", lambda: real + 3600)
    service.verify(token)  # past its exp by our clock: verified again, not served stale
    assert decodes == 1
    with pytest.raises(NotAuthenticated):
        service.verify(token + "x")
