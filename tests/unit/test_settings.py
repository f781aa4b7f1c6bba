"""Settings are validated at start; prod refuses the embedded defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from missionlink import cli
from missionlink.config import Settings, normalize_database_url, public_url_for


def test_prod_refuses_sqlite_generated_key_sandbox_no_broker_no_smtp() -> None:
    with pytest.raises(ValidationError) as err:
        Settings(env="prod")
    text = str(err.value)
    for reason in ("SQLite", "JWT", "sandbox", "BROKER_URL", "SMTP_HOST"):
        assert reason in text


def test_cloud_style_postgres_urls_are_accepted_and_password_injected() -> None:
    url = normalize_database_url("postgres://app@db.internal:5432/core", "s3cr%t")
    assert url.startswith("postgresql+asyncpg://app:")
    assert url.endswith("@db.internal:5432/core")


def test_csv_lists_and_bounds() -> None:
    s = Settings(cors_origins="https://a.example.com, https://b.example.com",  # type: ignore[arg-type]
                 trusted_proxies="10.0.0.0/8")  # type: ignore[arg-type]
    assert s.cors_origins == ["https://a.example.com", "https://b.example.com"]
    with pytest.raises(ValidationError):
        Settings(min_pledge=5000, max_pledge=1000)
    with pytest.raises(ValidationError):
        Settings(payment_provider="paypal")


@pytest.mark.parametrize(("host", "port", "url"), [
    ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
    ("127.0.0.1", 8123, "http://127.0.0.1:8123"),
    ("0.0.0.0", 9000, "http://127.0.0.1:9000"),
    ("", 9000, "http://127.0.0.1:9000"),
    ("::", 9000, "http://127.0.0.1:9000"),
    ("::1", 8080, "http://[::1]:8080"),
    ("[::1]", 8080, "http://[::1]:8080"),
    ("localhost", 8001, "http://localhost:8001"),
    ("192.168.0.7", 8000, "http://192.168.0.7:8000"),
])
def test_public_url_is_derived_from_the_address_serve_binds(host: str, port: int,
                                                           url: str) -> None:
    assert public_url_for(host, port) == url


def test_an_empty_public_url_is_the_default_binds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISSIONLINK_PUBLIC_URL", "")
    assert Settings().public_url == "http://127.0.0.1:8000"
    monkeypatch.setenv("MISSIONLINK_PUBLIC_URL", "https://missionlink.example.com")
    assert Settings().public_url == "https://missionlink.example.com"


@pytest.mark.parametrize(("preset", "expected"), [
    (None, "http://127.0.0.1:8123"),
    ("", "http://127.0.0.1:8123"),
    ("https://missionlink.example.com", "https://missionlink.example.com"),
])
def test_serve_sets_public_url_from_its_port_unless_one_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, preset: str | None, expected: str
) -> None:
    """What `serve` hands its processes: the settings they build see the derived URL."""
    import signal

    import uvicorn

    seen: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.append(Settings().public_url))
    monkeypatch.setenv("MISSIONLINK_DATA_DIR", str(tmp_path))
    for name in ("MISSIONLINK_SERVE_WORKER", "MISSIONLINK_SERVE_PROCESSES",
                 "MISSIONLINK_SERVE_HOST"):
        monkeypatch.setenv(name, "")  # restored afterwards; serve overwrites them
    if preset is None:
        monkeypatch.delenv("MISSIONLINK_PUBLIC_URL", raising=False)
    else:
        monkeypatch.setenv("MISSIONLINK_PUBLIC_URL", preset)
    before = signal.getsignal(signal.SIGTERM)
    try:
        assert cli.main(["serve", "--port", "8123"]) == 0
    finally:
        signal.signal(signal.SIGTERM, before)
    assert seen == [expected]


def test_embedded_default_lives_under_data_dir(tmp_path: object) -> None:
    s = Settings(data_dir=tmp_path)  # type: ignore[arg-type]
    assert s.embedded and s.core_url.startswith("sqlite+aiosqlite:///")
    assert s.core_url != s.identity_url


@pytest.mark.parametrize("mode", ["auto", "none"])
def test_prod_refuses_mail_that_may_travel_in_plain_text(mode: str) -> None:
    with pytest.raises(ValidationError, match=f"SMTP_TLS={mode}"):
        Settings(env="prod", smtp_tls=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_prod_accepts_mail_that_must_be_encrypted(mode: str) -> None:
    s = Settings(
        env="prod", smtp_tls=mode, smtp_host="email-smtp.example.com",  # type: ignore[arg-type]
        database_url="postgresql://app@db/core", identity_database_url="postgresql://app@db/id",
        jwt_private_key="-----BEGIN PRIVATE KEY-----", broker_url="redis://cache:6379/0",
        payment_provider="webhook", payment_webhook_secret="whsec",
    )
    assert s.smtp_tls == mode


def test_smtp_tls_defaults_to_auto_and_tls_to_port_465() -> None:
    assert Settings().smtp_tls == "auto"
    assert Settings(smtp_tls="tls").smtp_port == 465  # type: ignore[arg-type]
    assert Settings(smtp_tls="tls", smtp_port=2465).smtp_port == 2465  # type: ignore[arg-type]
    assert Settings(smtp_tls="starttls").smtp_port == 587  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Settings(smtp_tls="ssl")  # type: ignore[arg-type]


def test_readme_settings_table_names_every_setting() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    expected = {name.upper() for name in Settings.model_fields}
    assert expected - documented == set(), "settings missing from the README's table"
    assert documented - expected <= {"MISSIONLINK_"}, "the README names settings that do not exist"
