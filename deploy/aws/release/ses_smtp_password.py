#!/usr/bin/env python3
"""Derive the SES SMTP password from an IAM secret access key (AWS's documented method).

    aws iam create-access-key --user-name missionlink-prod-smtp > key.json
    python ses_smtp_password.py ap-northeast-2 < <(jq -r .AccessKey.SecretAccessKey key.json)

Reads the secret access key from standard input so it never lands in shell history.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import sys

# Constants of SES's SMTP credential scheme (signature version 4 over a fixed message).
DATE = "11111111"
SERVICE = "ses"
MESSAGE = "SendRawEmail"
TERMINAL = "aws4_request"
VERSION = 0x04


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def smtp_password(secret_access_key: str, region: str) -> str:
    signature = _sign(("AWS4" + secret_access_key).encode("utf-8"), DATE)
    for part in (region, SERVICE, TERMINAL, MESSAGE):
        signature = _sign(signature, part)
    return base64.b64encode(bytes([VERSION]) + signature).decode("utf-8")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    secret = sys.stdin.readline().strip()
    if not secret:
        print("ses_smtp_password: no secret access key on standard input", file=sys.stderr)
        return 1
    print(smtp_password(secret, argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
