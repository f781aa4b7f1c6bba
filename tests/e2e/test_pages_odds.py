"""The mission page shows payout ratios as odds are read: two decimals at most."""

from __future__ import annotations

import httpx

from missionlink.bootstrap import Container
from tests.helpers import make_user, propose, top_up


async def test_odds_show_two_decimals_at_most(
    client: httpx.AsyncClient, container: Container,
) -> None:
    streamer, creator = await make_user(container, "streamer"), await make_user(container)
    await top_up(client, creator, 20_000)
    mission = await propose(client, creator, streamer)
    for side, points in (("success", 300), ("failure", 200)):
        fan = await make_user(container)
        r = await client.post(f"/api/v1/missions/{mission['id']}/bets", headers=fan.headers,
                              json={"side": side, "points": points})
        assert r.status_code == 201, r.text
    r = await client.get(f"/api/v1/missions/{mission['id']}/prediction")
    assert r.json()["success_payout_ratio"] == 1.6667  # the API keeps its precision
    ko = (await client.get(f"/missions/{mission['id']}?lang=ko")).text
    en = (await client.get(f"/missions/{mission['id']}?lang=en")).text
    assert "배당 1.67배" in ko and "배당 2.5배" in ko and "1.6667" not in ko
    times = "\u00d7"  # the multiplication sign
    assert f"pays 1.67{times}" in en and f"pays 2.5{times}" in en
