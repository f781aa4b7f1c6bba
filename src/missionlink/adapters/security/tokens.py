"""Access tokens: short-lived EdDSA JWTs; ``alg`` pinned and every claim checked."""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from missionlink.adapters.security.revocations import RevocationList
from missionlink.domain.errors import NotAuthenticated

ALGORITHM = "EdDSA"
CACHE_SIZE = 10_000
KEY_FILE = "jwt_ed25519.pem"


def load_or_create_key(pem: str, data_dir: Path) -> PrivateKeyTypes:
    """The configured PEM key, or one generated once under ``DATA_DIR`` (dev only)."""
    if pem:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    role: str
    #: The session (refresh-token family) the token was issued for; logout revokes it.
    session_id: str | None = None


class TokenService:
    def __init__(
        self,
        key: PrivateKeyTypes,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        revoked: RevocationList | None = None,
    ) -> None:
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("JWT_PRIVATE_KEY must be an Ed25519 private key (PEM, PKCS#8)")
        self._key = key
        self._public = key.public_key()
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self.revoked = revoked if revoked is not None else RevocationList()
        # Verified tokens until they expire: an Ed25519 check per request is measurable.
        self._verified: OrderedDict[str, tuple[AccessClaims, float]] = OrderedDict()

    def issue(
        self, user_id: int, role: str, now: datetime, *, session_id: str | None = None
    ) -> str:
        claims = {
            "sub": str(user_id),
            "role": role,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self.ttl_seconds)).timestamp()),
        }
        if session_id is not None:
            claims["sid"] = session_id
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        cached = self._verified.get(token)
        if cached is not None and cached[1] <= time.time():
            del self._verified[token]
            cached = None
        claims = cached[0] if cached is not None else self._verify(token)
        # Checked on every call, cached or not: a logout must end the token at once.
        if claims.session_id is not None and claims.session_id in self.revoked:
            self._verified.pop(token, None)
            raise NotAuthenticated("the session of this access token has ended")
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
            sid = claims.get("sid")
            verified = AccessClaims(
                user_id=int(claims["sub"]),
                role=str(claims.get("role", "")),
                session_id=sid if isinstance(sid, str) else None,
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise NotAuthenticated("the access token is invalid or expired") from exc
        self._verified[token] = (verified, float(claims["exp"]))
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return verified
