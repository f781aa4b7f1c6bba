"""Posting on the fan board is rate limited per user (RATE_LIMIT_POSTS_PER_MINUTE)."""

from __future__ import annotations

import httpx
import pytest

from missionlink.bootstrap import Container
from tests.helpers import make_user

LIMIT = 3


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"rate_limit_posts_per_minute": LIMIT}


async def test_posts_and_comments_share_a_per_user_limit_with_retry_after(
    client: httpx.AsyncClient, container: Container
) -> None:
    streamer = await make_user(container, "streamer")
    fan, other = await make_user(container), await make_user(container)
    url = f"/api/v1/channels/{streamer.id}/posts"
    first = await client.post(url, json={"title": "t", "body": "b"}, headers=fan.headers)
    assert first.status_code == 201
    for _ in range(LIMIT - 1):
        r = await client.post(f"/api/v1/posts/{first.json()['id']}/comments",
                              json={"body": "c"}, headers=fan.headers)
        assert r.status_code == 201
    r = await client.post(url, json={"title": "t", "body": "b"}, headers=fan.headers)
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    r = await client.post(f"/api/v1/posts/{first.json()['id']}/comments",
                          json={"body": "c"}, headers=fan.headers)
    assert r.status_code == 429
    # Someone else is not slowed down, and reading is never limited.
    r = await client.post(url, json={"title": "t", "body": "b"}, headers=other.headers)
    assert r.status_code == 201
    assert (await client.get(url)).status_code == 200
