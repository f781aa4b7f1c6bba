"""Demo data for the pages, made through the public API only: a channel that looks lived
in, so a page shows each of its parts (badges of every state, pools with odds, messages,
a reject reason, a board with comments, a wallet with lines).

Shared by the accessibility test (tests/e2e/test_accessibility_browser.py) and the
screenshot tool (tools/screenshots.py). The caller runs the settlement worker afterwards
when settled missions should read 정산 완료 / Settled.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import httpx

PASSWORD = "demo password 1234"
_seq = itertools.count(1)


@dataclass
class Person:
    id: int
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Demo:
    """What the seed made: who, and the ids a page needs."""
    streamer: Person
    other_streamer: Person
    viewer: Person
    fan: Person
    missions: dict[str, int] = field(default_factory=dict)
    post_id: int = 0
    overlay_url: str = ""
    admin: Person | None = None  # the caller adds one: sign-up makes no admins


async def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201, 202), response.text
    return response.json() if response.content else None


async def join(client: httpx.AsyncClient, name: str, role: str = "viewer") -> Person:
    """Sign up and log in: a person with an access token."""
    email = f"demo{next(_seq)}-{role}@example.com"
    user = await _ok(await client.post("/api/v1/auth/signup", json={
        "email": email, "password": PASSWORD, "display_name": name, "role": role}))
    pair = await _ok(await client.post("/api/v1/auth/login",
                                       json={"email": email, "password": PASSWORD}))
    return Person(user["id"], name, pair["access_token"])


async def _mission(client: httpx.AsyncClient, who: Person, streamer: Person, title: str,
                   amount: int, description: str = "") -> int:
    body = {"streamer_id": streamer.id, "title": title, "description": description,
            "amount": amount, "duration_seconds": 3 * 86_400}
    mission = await _ok(await client.post("/api/v1/missions", json=body, headers=who.headers))
    return int(mission["id"])


async def _post(client: httpx.AsyncClient, path: str, who: Person, body: Any = None) -> Any:
    return await _ok(await client.post(path, json=body, headers=who.headers))


async def seed(client: httpx.AsyncClient) -> Demo:
    """A streamer's channel with missions in every state, bets, messages and a board."""
    streamer = await join(client, "라면왕", "streamer")
    other = await join(client, "Speedrun Sora", "streamer")
    viewer = await join(client, "새내기")
    fan = await join(client, "열혈팬")
    demo = Demo(streamer, other, viewer, fan)
    r = await client.patch("/api/v1/streamers/me/profile", headers=streamer.headers, json={
        "intro": "매일 밤 9시 먹방과 도전 방송!\n미션은 언제나 환영합니다.",
        "link": "https://chzzk.naver.com/ramenking"})
    await _ok(r)
    for who in (viewer, fan):
        await _post(client, "/api/v1/wallet/topups", who, {"amount": 300_000})
    # The viewer takes part of a top-up back, so the wallet shows its refund list.
    viewer_topup = await _ok(await client.get("/api/v1/wallet/topups", headers=viewer.headers))
    await _post(client, f"/api/v1/wallet/topups/{viewer_topup['items'][0]['id']}/refunds",
                viewer, {"amount": 20_000})

    m = demo.missions
    m["live"] = await _mission(client, fan, streamer, "매운 라면 10봉 먹기", 20_000,
                               "10분 안에 다 먹으면 성공!")
    m["pending"] = await _mission(client, viewer, streamer, "노래 한 곡 부르기", 5_000)
    m["succeeded"] = await _mission(client, fan, streamer, "구독자 1,000명 달성 기념 춤", 30_000)
    m["rejected"] = await _mission(client, viewer, streamer, "밤새 방송하기", 10_000)
    m["other"] = await _mission(client, fan, other, "Speedrun any% in under 2 hours", 15_000)
    for key in ("live", "succeeded", "other"):
        who = other if key == "other" else streamer
        await _post(client, f"/api/v1/missions/{m[key]}/accept", who)
    await _post(client, f"/api/v1/missions/{m['live']}/pledges", viewer,
                {"amount": 5_000, "message": "화이팅! 끝까지 드세요"})
    await _post(client, f"/api/v1/missions/{m['live']}/pledges", viewer,
                {"amount": 1_000, "anonymous": True})
    for side, points, who in (("success", 300, viewer), ("failure", 200, fan)):
        await _post(client, f"/api/v1/missions/{m['live']}/bets", who,
                    {"side": side, "points": points})
    await _post(client, f"/api/v1/missions/{m['succeeded']}/pledges", viewer, {"amount": 10_000})
    await _post(client, f"/api/v1/missions/{m['succeeded']}/bets", viewer,
                {"side": "success", "points": 100})
    await _post(client, f"/api/v1/missions/{m['succeeded']}/result", streamer,
                {"outcome": "success"})
    await _post(client, f"/api/v1/missions/{m['rejected']}/reject", streamer,
                {"reason": "오늘은 시간이 없어요. 다음에 꼭 할게요!"})

    post = await _post(client, f"/api/v1/channels/{streamer.id}/posts", fan,
                       {"title": "오늘 방송 최고였어요", "body": "라면 먹방 다시 해주세요 🍜"})
    demo.post_id = int(post["id"])
    await _post(client, f"/api/v1/posts/{demo.post_id}/comments", viewer,
                {"body": "저도 봤어요! 다음 미션도 후원할게요"})
    await _post(client, f"/api/v1/channels/{streamer.id}/posts", viewer,
                {"title": "미션 아이디어 모아요", "body": "매운 음식 챌린지 어때요?"})
    overlay = await _ok(await client.get("/api/v1/streamers/me/overlay",
                                         headers=streamer.headers))
    demo.overlay_url = overlay["url"]
    return demo
