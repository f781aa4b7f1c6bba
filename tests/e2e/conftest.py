"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from missionlink.api.app import create_app
from missionlink.bootstrap import Container


@pytest.fixture
async def normal(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """The same container's app without the front layer, to compare answers with."""
    app = create_app(container, fast_path=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as c:
        yield c
