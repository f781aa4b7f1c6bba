from __future__ import annotations

import pytest

from missionlink.adapters.security.rate_limit import RateLimiter
from missionlink.domain.errors import RateLimited


def test_limit_then_retry_after_then_window_slides() -> None:
    now = [0.0]
    limiter = RateLimiter(monotonic=lambda: now[0])
    for _ in range(3):
        limiter.hit("k", limit=3, window=60, what="things")
    with pytest.raises(RateLimited) as err:
        limiter.hit("k", limit=3, window=60, what="things")
    assert err.value.retry_after == 60
    now[0] = 61
    limiter.hit("k", limit=3, window=60, what="things")
    limiter.hit("other", limit=0, window=60, what="things")  # 0 turns the rule off
