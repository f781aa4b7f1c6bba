"""A short mission flow over HTTP against a running API (deploy/docker/run-check.sh runs
it against the image's `serve` and `worker` containers): a streamer and a fan sign up,
the fan tops up, proposes a mission, the streamer accepts, the fan pledges more and
bets, the streamer declares success; then the worker must settle it, and the wallets
must show the payout minus the fee, the spent pledges and the won bet.

Standard library only, so it runs on any Python 3.11 next to the containers:
    python3 deploy/docker/smoke.py http://127.0.0.1:PORT [--settle-timeout 60]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from typing import Any

TIMEOUT = 10.0
SIGNUP_POINTS = 1000
FEE_BPS = 1000


class Failed(Exception):
    pass


class Api:
    def __init__(self, base: str) -> None:
        if not base.startswith(("http://", "https://")):
            raise Failed(f"not an http(s) URL: {base!r}")
        self.base = base.rstrip("/")

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             want: int = 200) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        if status != want:
            raise Failed(f"{method} {path}: {status} (want {want}): {text[:500]}")
        return json.loads(text) if text else None


def expect(what: str, got: Any, want: Any) -> None:
    if got != want:
        raise Failed(f"{what}: got {got!r}, want {want!r}")
    print(f"ok  {what}: {got!r}")


def account(api: Api, role: str, tag: str) -> tuple[int, str]:
    email = f"ci-{role}-{tag}@example.com"
    password = secrets.token_urlsafe(18)
    user = api.call("POST", "/api/v1/auth/signup", {
        "email": email, "password": password, "display_name": f"CI {role} {tag}",
        "role": role, "language": "en"}, want=201)
    expect(f"signup {role} role", user["role"], role)
    tokens = api.call("POST", "/api/v1/auth/login", {"email": email, "password": password})
    me = api.call("GET", "/api/v1/me", token=tokens["access_token"])
    expect(f"GET /me of the {role}", me["id"], user["id"])
    return int(user["id"]), str(tokens["access_token"])


def flow(api: Api, settle_timeout: float) -> None:
    expect("GET /healthz", api.call("GET", "/healthz")["status"], "ok")
    expect("GET /readyz", api.call("GET", "/readyz")["ready"], True)
    tag = secrets.token_hex(4)
    streamer_id, streamer = account(api, "streamer", tag)
    _, fan = account(api, "viewer", tag)
    expect("fan's wallet after signup", api.call("GET", "/api/v1/wallet", token=fan),
           {"cash_balance": 0, "points_balance": SIGNUP_POINTS, "debt": 0})
    topup = api.call("POST", "/api/v1/wallet/topups", {"amount": 50_000}, token=fan, want=201)
    expect("top-up status", topup["status"], "completed")
    mission = api.call("POST", "/api/v1/missions", {
        "streamer_id": streamer_id, "title": f"CI mission {tag}", "description": "",
        "amount": 10_000, "duration_seconds": 600}, token=fan, want=201)
    mid = mission["id"]
    expect("new mission", (mission["status"], mission["total_pledged"]), ("pending", 10_000))
    accepted = api.call("POST", f"/api/v1/missions/{mid}/accept", token=streamer)
    expect("accept", accepted["status"], "accepted")
    pledge = api.call("POST", f"/api/v1/missions/{mid}/pledges", {"amount": 5_000},
                      token=fan, want=201)
    expect("total after the second pledge", pledge["total_pledged"], 15_000)
    api.call("POST", f"/api/v1/missions/{mid}/bets", {"side": "success", "points": 100},
             token=fan, want=201)
    pool = api.call("GET", f"/api/v1/missions/{mid}/prediction")
    expect("success pool", pool["success_pool"], 100)
    done = api.call("POST", f"/api/v1/missions/{mid}/result", {"outcome": "success"},
                    token=streamer)
    expect("result", (done["status"], done["settlement"]), ("succeeded", "pending"))
    deadline = time.monotonic() + settle_timeout
    started = time.monotonic()
    while True:
        got = api.call("GET", f"/api/v1/missions/{mid}")
        if got["settlement"] == "settled":
            break
        if time.monotonic() > deadline:
            raise Failed(f"mission {mid} not settled by the worker in {settle_timeout:.0f} s: "
                         f"settlement={got['settlement']!r}")
        time.sleep(0.25)
    print(f"ok  settled by the worker in {time.monotonic() - started:.1f} s")
    total = 15_000
    payout = total - total * FEE_BPS // 10_000
    expect("streamer's wallet", api.call("GET", "/api/v1/wallet", token=streamer),
           {"cash_balance": payout, "points_balance": SIGNUP_POINTS, "debt": 0})
    # 50,000 - 15,000 pledged; points: 1000 - 100 staked + 100 back (sole winner)
    # + 150 earned for pledging 15,000 on a mission that succeeded.
    expect("fan's wallet", api.call("GET", "/api/v1/wallet", token=fan),
           {"cash_balance": 35_000, "points_balance": SIGNUP_POINTS + total // 100, "debt": 0})
    lines = api.call("GET", "/api/v1/wallet/transactions?limit=100", token=fan)["items"]
    kinds = {line["kind"] for line in lines}
    expect("fan's journal has top-up and pledge lines", {"topup", "pledge"} <= kinds, True)
    print(f"MISSION_ID={mid}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("--settle-timeout", type=float, default=60.0)
    args = parser.parse_args()
    try:
        flow(Api(args.base_url), args.settle_timeout)
    except (Failed, OSError, KeyError, ValueError) as error:
        print(f"FAIL {error}", file=sys.stderr)
        return 1
    print("smoke flow passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
