"""Settings: every ``MISSIONLINK_*`` environment variable, validated at start."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Env(StrEnum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


class SmtpTls(StrEnum):
    """How the SMTP connection is protected (``SMTP_TLS``)."""

    auto = "auto"  # STARTTLS when the server offers it in EHLO, plain otherwise
    starttls = "starttls"  # STARTTLS or no delivery
    tls = "tls"  # implicit TLS from the first byte (port 465)
    none = "none"  # never TLS: a local catcher or a relay on a trusted network


#: Where ``missionlink serve`` listens unless told otherwise (``--host``, ``--port``).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def public_url_for(host: str, port: int) -> str:
    """The ``PUBLIC_URL`` a server bound to ``host:port`` answers on when none is set.

    A wildcard bind (``0.0.0.0``, ``::``, empty) is reached on this machine at the loopback
    address; an IPv6 address is bracketed. Behind a domain, a proxy or a published port,
    the address clients use differs: set ``PUBLIC_URL`` then.
    """
    host = host.strip().strip("[]")
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (a bind address read, not bound)
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def normalize_database_url(url: str, password: str | None = None) -> str:
    """Turn cloud-style ``postgres://`` URLs into async driver URLs; inject a password."""
    from sqlalchemy.engine import make_url

    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    parsed = make_url(url)
    if password:
        parsed = parsed.set(password=password)
    return parsed.render_as_string(hide_password=False)


#: The default ``PLEDGE_MESSAGE_BLOCKED_WORDS``.
DEFAULT_BLOCKED_WORDS = ("시발", "씨발", "ㅅㅂ", "병신", "ㅂㅅ", "개새끼", "지랄", "좆",
                         "fuck", "shit", "bitch", "asshole")


class Settings(BaseSettings):
    # A refused value is never echoed in the error (it may be a key or a password).
    model_config = SettingsConfigDict(env_prefix="MISSIONLINK_", extra="ignore",
                                      hide_input_in_errors=True)

    env: Env = Env.dev
    data_dir: Path = Path("./var")
    identity_database_url: str = ""
    database_url: str = ""
    database_password: str | None = None
    identity_database_password: str | None = None
    broker_url: str = ""

    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "MissionLink <no-reply@missionlink.example.com>"
    smtp_tls: SmtpTls = SmtpTls.auto
    smtp_ca_file: Path | None = None

    platform_fee_bps: int = Field(default=1000, ge=0, le=10000)
    min_pledge: int = Field(default=1000, ge=1)
    max_pledge: int = Field(default=1_000_000, ge=1)
    max_topup: int = Field(default=2_000_000, ge=1000)
    min_mission_seconds: int = Field(default=60, ge=1)
    max_mission_seconds: int = Field(default=604_800, ge=60)
    signup_points: int = Field(default=1000, ge=0)
    bet_window_seconds: int = Field(default=120, ge=0)
    #: How long after its deadline the result of an accepted mission may still be declared
    #: (no pledges or bets meanwhile); fixed per mission at creation. 0 turns it off.
    result_grace_seconds: int = Field(default=600, ge=0)
    proposal_cooldown_seconds: int = Field(default=300, ge=0)
    cancel_limit_per_day: int = Field(default=5, ge=1)

    cors_origins: Annotated[list[str], NoDecode] = []
    #: Words masked with ``*`` in pledge messages (comma-separated, case-insensitive); the
    #: default is a short list of common Korean and English insults.
    pledge_message_blocked_words: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_WORDS))
    rate_limit_signups_per_minute: int = Field(default=20, ge=0)
    #: Failed logins on one account (from any address) in 15 minutes before further tries
    #: from addresses that failed on it are slowed; also the budget of one address on one
    #: account. 0 turns login throttling off.
    rate_limit_login_failures: int = Field(default=5, ge=0)
    #: The longest wait the progressive login delay asks for (it doubles from 1 s).
    rate_limit_login_max_delay_seconds: int = Field(default=300, ge=1, le=900)
    rate_limit_pledges_per_minute: int = Field(default=120, ge=0)
    rate_limit_posts_per_minute: int = Field(default=10, ge=0)

    jwt_private_key: str = ""
    jwt_issuer: str = "missionlink"
    jwt_audience: str = "missionlink-api"
    access_token_seconds: int = Field(default=900, ge=60)
    refresh_token_seconds: int = Field(default=2_592_000, ge=300)

    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19_456, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)

    #: Base of absolute links (the overlay URL) and the origin trusted for cookie-mode
    #: refresh. Unset (or empty), ``missionlink serve`` derives it from the address it
    #: binds (``public_url_for``); anything else falls back to the default bind's.
    public_url: str = public_url_for(DEFAULT_HOST, DEFAULT_PORT)
    payment_provider: str = "sandbox"
    payment_webhook_secret: str = ""
    payment_webhook_tolerance_seconds: int = Field(default=300, ge=1)
    #: PortOne V2 (PAYMENT_PROVIDER=portone): the REST API's base URL, the API secret, the
    #: webhook secret (``whsec_...``), the store id and the channel key the widget pays on.
    portone_api_base_url: str = "https://api.portone.io"
    portone_api_secret: str = ""
    portone_webhook_secret: str = ""
    portone_store_id: str = ""
    portone_channel_key: str = ""
    #: Stripe (PAYMENT_PROVIDER=stripe): the API's base URL, the secret and publishable keys
    #: and the webhook endpoint's signing secret (``whsec_...``).
    stripe_api_base_url: str = "https://api.stripe.com"
    stripe_secret_key: str = ""
    stripe_publishable_key: str = ""
    stripe_webhook_secret: str = ""
    #: The most KRW one user may top up per calendar day in Korea (KST) with a real
    #: provider: completed top-ups, virtual accounts awaiting their deposit, and payments
    #: opened in the last hour. 0 turns the limit off; the sandbox provider has none.
    daily_topup_limit: int = Field(default=1_000_000, ge=0)
    #: Days after a top-up completes during which its unspent cash may be refunded to the
    #: payment method (within the providers' own windows for card cancellations).
    refund_window_days: int = Field(default=180, ge=1, le=3650)
    #: Key-encryption keys of the payout bank accounts: ``<key id>:<base64 of 32 bytes>``,
    #: comma-separated, the current one first (docs/security.md). Empty: payouts are off
    #: (their routes answer 503 ``payouts-unavailable``).
    payout_account_keys: SecretStr = SecretStr("")
    #: Days after a mission's payout before those earnings may be withdrawn.
    payout_hold_days: int = Field(default=7, ge=0, le=365)
    #: The smallest withdrawal, KRW.
    payout_minimum: int = Field(default=10_000, ge=1000)
    #: Hours after the payout account is registered or changed before a withdrawal may be
    #: paid to it, so a taken-over login cannot send the earnings to a new account at once.
    payout_account_cooldown_hours: int = Field(default=72, ge=0, le=720)
    trusted_proxies: Annotated[list[str], NoDecode] = []
    client_ip_header: str = ""

    db_pool_size: int = Field(default=20, ge=1, le=500)
    #: PostgreSQL, set on every pooled connection: a statement running longer than this is
    #: cancelled (its request fails rather than holding a connection). 0 turns it off.
    db_statement_timeout_ms: int = Field(default=30_000, ge=0, le=3_600_000)
    #: PostgreSQL: the longest a statement waits for a row or table lock before it fails.
    #: 0 waits for ever.
    db_lock_timeout_ms: int = Field(default=10_000, ge=0, le=3_600_000)
    #: PostgreSQL: a session left inside an open transaction doing nothing for this long is
    #: ended by the server, so its locks are given back. 0 turns it off.
    db_idle_in_transaction_timeout_ms: int = Field(default=60_000, ge=0, le=3_600_000)
    #: PostgreSQL: the most pledges applied together in one statement and one commit (at
    #: most 64, PostgreSQL's cache of a transaction's subtransactions).
    pledge_batch_max: int = Field(default=32, ge=1, le=64)
    #: PostgreSQL: pledge batches running at once per API process; a pledge that arrives
    #: while this many run waits for the next batch.
    pledge_batch_concurrency: int = Field(default=2, ge=1, le=64)
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    #: Each `missionlink serve` process serves /metrics on an internal port of its own: the
    #: first free one of API_METRICS_PORT .. API_METRICS_PORT + N - 1 with `--workers N`,
    #: on the address `serve --host` binds. 0 turns the internal listener off (/metrics on
    #: the public port stays).
    api_metrics_port: int = Field(default=9101, ge=0, le=65535)
    #: `missionlink worker` answers /healthz 503 when its loop has not completed a pass
    #: for this long.
    worker_liveness_seconds: int = Field(default=60, ge=5, le=3600)
    #: The worker checks every ledger invariant this often (the reconcile metrics); 0 never.
    reconcile_interval_seconds: int = Field(default=300, ge=0)
    #: How long a worker holds the result emails it claimed; one killed mid-batch leaves
    #: them to the next worker after this. Longer than sending a batch takes.
    email_lease_seconds: int = Field(default=120, ge=5, le=3600)
    worker_batch_size: int = Field(default=50, ge=1)
    worker_max_attempts: int = Field(default=8, ge=1)
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: Public reads kept in memory per API process (entries); 0 reads the database each time.
    read_cache_max_entries: int = Field(default=10_000, ge=0)
    #: Bytes of encoded bodies the read cache keeps per API process, whatever their number.
    read_cache_max_bytes: int = Field(default=16 * 2**20, ge=0)
    #: The longest a cached public read may be served after a change it missed.
    read_cache_ttl_seconds: float = Field(default=1.0, gt=0, le=1)
    #: Of the cached public reads the front layer answers, one in this many is logged (each
    #: is counted in the metrics); slow ones are logged every time. 1 logs every one.
    log_cached_reads_every: int = Field(default=100, ge=1)
    #: Headers, then the body, must arrive within this long or the connection is closed.
    request_read_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    #: A client that reads none of a pending response for this long is disconnected.
    response_write_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    sse_max_per_token: int = Field(default=10, ge=0)
    sse_max_per_address: int = Field(default=50, ge=0)
    sse_max_per_process: int = Field(default=20_000, ge=0)

    @field_validator("cors_origins", "trusted_proxies", "pledge_message_blocked_words",
                     mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("public_url", mode="before")
    @classmethod
    def _empty_public_url_is_unset(cls, value: object) -> object:
        return public_url_for(DEFAULT_HOST, DEFAULT_PORT) if value == "" else value

    @field_validator("smtp_ca_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("payout_account_keys")
    @classmethod
    def _payout_keys_parse(cls, value: SecretStr) -> SecretStr:
        from missionlink.adapters.security.vault import parse_keys

        parse_keys(value.get_secret_value())  # its errors name key ids, never key material
        return value

    @field_validator("payment_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in {"sandbox", "webhook", "portone", "stripe"}:
            raise ValueError(
                "PAYMENT_PROVIDER must be 'sandbox', 'webhook', 'portone' or 'stripe'")
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.min_pledge > self.max_pledge:
            raise ValueError("MIN_PLEDGE must not exceed MAX_PLEDGE")
        if self.min_mission_seconds > self.max_mission_seconds:
            raise ValueError("MIN_MISSION_SECONDS must not exceed MAX_MISSION_SECONDS")
        if self.payment_provider == "webhook" and not self.payment_webhook_secret:
            raise ValueError("PAYMENT_PROVIDER=webhook needs PAYMENT_WEBHOOK_SECRET")
        needs = {
            "portone": ("portone_api_secret", "portone_webhook_secret", "portone_store_id",
                        "portone_channel_key"),
            "stripe": ("stripe_secret_key", "stripe_publishable_key", "stripe_webhook_secret"),
        }.get(self.payment_provider, ())
        missing = [n.upper() for n in needs if not getattr(self, n)]
        if missing:
            raise ValueError(f"PAYMENT_PROVIDER={self.payment_provider} needs "
                             + ", ".join(missing))
        if self.smtp_tls is SmtpTls.tls and "smtp_port" not in self.model_fields_set:
            self.smtp_port = 465
        if self.env is Env.prod:
            problems = []
            if self.core_url.startswith("sqlite") or self.identity_url.startswith("sqlite"):
                problems.append("SQLite databases")
            if not self.jwt_private_key:
                problems.append("the generated JWT key (set JWT_PRIVATE_KEY)")
            if self.payment_provider == "sandbox":
                problems.append("the sandbox payment provider")
            if not self.broker_url:
                problems.append("an empty BROKER_URL")
            if not self.smtp_host:
                problems.append("no SMTP_HOST")
            if self.smtp_tls in (SmtpTls.auto, SmtpTls.none):
                # auto falls back to plain text when STARTTLS is stripped on the way
                problems.append(f"SMTP_TLS={self.smtp_tls.value} (set starttls or tls)")
            if problems:
                raise ValueError("ENV=prod refuses to start with " + ", ".join(problems))
        return self

    @cached_property
    def core_url(self) -> str:
        url = self.database_url or f"sqlite:///{self.data_dir}/core.sqlite3"
        return normalize_database_url(url, self.database_password)

    @cached_property
    def identity_url(self) -> str:
        url = self.identity_database_url or f"sqlite:///{self.data_dir}/identity.sqlite3"
        return normalize_database_url(url, self.identity_database_password)

    @property
    def embedded(self) -> bool:
        """True when the core database is SQLite: one process, worker inside ``serve``."""
        return self.core_url.startswith("sqlite")

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"
