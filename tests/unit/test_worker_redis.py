"""Parallel test workers each get a Redis database of their own (tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import redis_url_of_worker


def test_outside_xdist_the_url_is_kept() -> None:
    assert redis_url_of_worker("redis://127.0.0.1:6379/15", "") == "redis://127.0.0.1:6379/15"


def test_each_worker_counts_down_from_the_urls_database() -> None:
    urls = {redis_url_of_worker("redis://127.0.0.1:6379/15", f"gw{n}") for n in range(4)}
    assert urls == {f"redis://127.0.0.1:6379/{db}" for db in (15, 14, 13, 12)}


def test_the_count_wraps_within_the_sixteen_databases() -> None:
    assert redis_url_of_worker("redis://h:1/1", "gw2") == "redis://h:1/15"
    assert redis_url_of_worker("redis://h:1", "gw1") == "redis://h:1/15"
