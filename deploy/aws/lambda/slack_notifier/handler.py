"""CloudWatch alarm notifications (delivered by SNS) as readable Slack messages.

The Slack webhook URL lives in Secrets Manager (``SLACK_WEBHOOK_SECRET_ARN``); it is read
once per warm container and never logged or echoed in an error.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

SLACK_HOST = "https://hooks.slack.com/"
STATE_ICONS = {
    "ALARM": ":red_circle:",
    "OK": ":large_green_circle:",
    "INSUFFICIENT_DATA": ":white_circle:",
}
MAX_REASON = 1500

Sender = Callable[[str, dict[str, Any]], None]


class NotifierError(RuntimeError):
    """A failure whose message is safe to log (it never contains the webhook URL)."""


@dataclass(frozen=True)
class Alarm:
    name: str
    state: str
    previous_state: str
    reason: str
    description: str
    region: str
    account: str
    changed_at: str

    @property
    def console_url(self) -> str:
        region = self.region or "ap-northeast-2"
        return (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#alarmsV2:alarm/{quote(self.name, safe='')}"
        )


def parse_alarm(message: dict[str, Any]) -> Alarm:
    """Read the CloudWatch alarm message that SNS carries."""
    arn = str(message.get("AlarmArn", ""))
    parts = arn.split(":")
    region = parts[3] if len(parts) > 4 else ""
    account = parts[4] if len(parts) > 4 else str(message.get("AWSAccountId", ""))
    return Alarm(
        name=str(message.get("AlarmName", "unnamed alarm")),
        state=str(message.get("NewStateValue", "UNKNOWN")),
        previous_state=str(message.get("OldStateValue", "UNKNOWN")),
        reason=str(message.get("NewStateReason", "")),
        description=str(message.get("AlarmDescription") or ""),
        region=region,
        account=account,
        changed_at=str(message.get("StateChangeTime", "")),
    )


def slack_message(alarm: Alarm, environment: str) -> dict[str, Any]:
    """A Slack Block Kit message: what fired, where, why, and a link to the alarm."""
    icon = STATE_ICONS.get(alarm.state, ":grey_question:")
    reason = alarm.reason if len(alarm.reason) <= MAX_REASON else alarm.reason[:MAX_REASON] + "…"
    title = f"{icon} [{environment}] {alarm.name} is {alarm.state}"
    fields = [
        f"*Alarm*\n{alarm.name}",
        f"*State*\n{alarm.previous_state} → {alarm.state}",
        f"*Environment*\n{environment}",
        f"*Account / region*\n{alarm.account or '?'} / {alarm.region or '?'}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if alarm.description:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*What it watches*\n{alarm.description}"},
            }
        )
    if reason:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Reason*\n{reason}"}}
        )
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open in CloudWatch"},
                    "url": alarm.console_url,
                }
            ],
        }
    )
    if alarm.changed_at:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"Changed at {alarm.changed_at}"}],
            }
        )
    return {"text": title, "blocks": blocks}


def plain_message(subject: str, text: str, environment: str) -> dict[str, Any]:
    """Anything on the topic that is not an alarm (for example a test publish)."""
    head = f"[{environment}] {subject}" if subject else f"[{environment}] notification"
    return {"text": f"{head}\n{text[:MAX_REASON]}"}


def messages_from_event(event: dict[str, Any], environment: str) -> list[dict[str, Any]]:
    out = []
    for record in event.get("Records") or []:
        sns = record.get("Sns") or {}
        raw = sns.get("Message", "")
        try:
            body = json.loads(raw)
        except (TypeError, ValueError):
            body = None
        if isinstance(body, dict) and "AlarmName" in body:
            out.append(slack_message(parse_alarm(body), environment))
        else:
            out.append(plain_message(str(sns.get("Subject") or ""), str(raw), environment))
    return out


def post_to_slack(url: str, payload: dict[str, Any], *, timeout: float = 5.0) -> None:
    """POST JSON to the webhook; errors name the status, never the URL."""
    if not url.startswith(SLACK_HOST):
        raise NotifierError("the webhook secret does not hold a Slack webhook URL")
    request = urllib.request.Request(  # noqa: S310 - scheme and host checked above
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        raise NotifierError(f"Slack answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise NotifierError(f"Slack could not be reached ({type(exc).__name__})") from None
    if not 200 <= status < 300:
        raise NotifierError(f"Slack answered HTTP {status}")


def read_webhook_url(secret_arn: str) -> str:
    """The webhook URL from Secrets Manager (plain string or JSON with ``url``)."""
    import boto3  # the Lambda runtime ships it; tests inject a reader instead

    value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    try:
        parsed = json.loads(value)
    except ValueError:
        return str(value).strip()
    return str(parsed.get("url", "")).strip() if isinstance(parsed, dict) else str(value).strip()


def notify(
    event: dict[str, Any],
    *,
    environment: str,
    webhook: Callable[[], str],
    send: Sender = post_to_slack,
) -> int:
    """Send one Slack message per SNS record; returns how many were sent."""
    messages = messages_from_event(event, environment)
    if not messages:
        return 0
    url = webhook()
    for message in messages:
        send(url, message)
        LOG.info("sent to Slack: %s", message["text"].splitlines()[0])
    return len(messages)


_cached_url: str | None = None


def _webhook() -> str:
    global _cached_url
    if _cached_url is None:
        _cached_url = read_webhook_url(os.environ["SLACK_WEBHOOK_SECRET_ARN"])
    return _cached_url


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    environment = os.environ.get("MISSIONLINK_ENVIRONMENT", "unknown")
    return {"sent": notify(event, environment=environment, webhook=_webhook)}
