"""The Slack notifier Lambda turns alarm messages into readable Slack messages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import AWS_DIR, load_module

notifier = load_module(
    "slack_notifier_handler", AWS_DIR / "lambda" / "slack_notifier" / "handler.py"
)

WEBHOOK = "https://hooks.slack.com/services/T000/B000/notarealtoken"
ALARM = {
    "AlarmName": "missionlink-prod-api5xx-ratio",
    "AlarmDescription": "Share of 5xx answers from the api (load balancer and targets)",
    "AWSAccountId": "333333333333",
    "NewStateValue": "ALARM",
    "OldStateValue": "OK",
    "NewStateReason": "Threshold Crossed: 3 datapoints [4.2, 3.9, 5.1] were greater than 1.0",
    "StateChangeTime": "2026-11-22T07:30:00.000+0000",
    "Region": "Asia Pacific (Seoul)",
    "AlarmArn": "arn:aws:cloudwatch:ap-northeast-2:333333333333:alarm:missionlink-prod-api5xx-ratio",
}


def sns_event(*messages: str, subject: str = "ALARM") -> dict[str, Any]:
    return {"Records": [{"Sns": {"Subject": subject, "Message": m}} for m in messages]}


def test_alarm_becomes_a_message_naming_alarm_state_reason_environment_and_link() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    count = notifier.notify(
        sns_event(json.dumps(ALARM)),
        environment="prod",
        webhook=lambda: WEBHOOK,
        send=lambda u, p: sent.append((u, p)),
    )
    assert count == 1
    url, payload = sent[0]
    assert url == WEBHOOK
    text = json.dumps(payload, ensure_ascii=False)
    assert payload["text"].startswith(":red_circle: [prod] missionlink-prod-api5xx-ratio is ALARM")
    assert "OK → ALARM" in text
    assert "Threshold Crossed" in text
    assert "333333333333 / ap-northeast-2" in text
    button = payload["blocks"][-2]["elements"][0]
    assert button["url"] == (
        "https://ap-northeast-2.console.aws.amazon.com/cloudwatch/home?region=ap-northeast-2"
        "#alarmsV2:alarm/missionlink-prod-api5xx-ratio"
    )


def test_recovery_is_green_and_long_reasons_are_cut() -> None:
    alarm = {**ALARM, "NewStateValue": "OK", "OldStateValue": "ALARM", "NewStateReason": "x" * 5000}
    message = notifier.slack_message(notifier.parse_alarm(alarm), "staging")
    assert message["text"].startswith(":large_green_circle: [staging]")
    reason = next(b for b in message["blocks"] if "Reason" in json.dumps(b))
    assert len(reason["text"]["text"]) < notifier.MAX_REASON + 20


def test_plain_sns_messages_are_forwarded_as_text() -> None:
    sent: list[dict[str, Any]] = []
    notifier.notify(
        sns_event("hello from a test publish", subject="check"),
        environment="dev",
        webhook=lambda: WEBHOOK,
        send=lambda _u, p: sent.append(p),
    )
    assert sent == [{"text": "[dev] check\nhello from a test publish"}]


def test_no_records_reads_no_secret() -> None:
    def webhook() -> str:
        raise AssertionError("the secret must not be read for an empty event")

    assert notifier.notify({"Records": []}, environment="dev", webhook=webhook) == 0


def test_webhook_url_never_appears_in_errors_or_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(request: Any, timeout: float) -> Any:
        raise notifier.urllib.error.HTTPError(request.full_url, 403, "Forbidden", {}, None)

    monkeypatch.setattr(notifier.urllib.request, "urlopen", refuse)
    with caplog.at_level("DEBUG"), pytest.raises(notifier.NotifierError) as raised:
        notifier.notify(sns_event(json.dumps(ALARM)), environment="prod", webhook=lambda: WEBHOOK)
    assert "403" in str(raised.value)
    assert WEBHOOK not in str(raised.value) and "hooks.slack.com" not in caplog.text


def test_refuses_a_secret_that_is_not_a_slack_webhook() -> None:
    with pytest.raises(notifier.NotifierError, match="Slack webhook"):
        notifier.post_to_slack("https://attacker.example/collect", {"text": "x"})


def test_reads_the_url_from_a_plain_or_json_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeSecrets:
        def __init__(self, value: str) -> None:
            self.value = value

        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            assert SecretId == "arn:secret"
            return {"SecretString": self.value}

    class FakeBoto3:
        value = ""

        @classmethod
        def client(cls, name: str) -> FakeSecrets:
            assert name == "secretsmanager"
            return FakeSecrets(cls.value)

    monkeypatch.setitem(__import__("sys").modules, "boto3", FakeBoto3)
    FakeBoto3.value = WEBHOOK + "\n"
    assert notifier.read_webhook_url("arn:secret") == WEBHOOK
    FakeBoto3.value = json.dumps({"url": WEBHOOK})
    assert notifier.read_webhook_url("arn:secret") == WEBHOOK
