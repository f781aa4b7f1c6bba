"""Key rotation of sealed payout accounts (``missionlink payouts keys --rewrap``): the
records under an old key are re-wrapped to the current one and still open, those under a
key the vault lacks are left and reported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from missionlink.adapters.security.vault import LocalKeyVault
from missionlink.domain.payouts import check_account
from missionlink.services import payout_batches, payouts
from tests.fakes import MemoryCore

NOW = datetime(2026, 3, 1, tzinfo=UTC)
OLD, NEW, GONE = (bytes([c]) * 32 for c in b"ong")


@pytest.fixture
async def core() -> AsyncIterator[MemoryCore]:
    core = await MemoryCore().create()
    yield core
    await core.close()


async def test_rewrap_moves_every_account_to_the_current_key(core: MemoryCore) -> None:
    old = LocalKeyVault({"k1": OLD, "k0": GONE})
    async with core.unit() as conn:
        for user_id, vault in ((1, old), (2, old), (3, LocalKeyVault({"k0": GONE}))):
            await payouts.put_account(conn, user_id=user_id, vault=vault, now=NOW,
                                      account=check_account("004", "12345678901", f"u{user_id}"))
    rotated = LocalKeyVault({"k2": NEW, "k1": OLD})
    async with core.unit() as conn:
        assert await payout_batches.key_usage(conn) == {"k1": {"payout_accounts": 2},
                                                        "k0": {"payout_accounts": 1}}
        assert await payout_batches.rewrap(conn, vault=rotated) == 2
        assert await payout_batches.rewrap(conn, vault=rotated) == 0
        assert await payout_batches.key_usage(conn) == {"k2": {"payout_accounts": 2},
                                                        "k0": {"payout_accounts": 1}}
        only_new = LocalKeyVault({"k2": NEW})
        shown = await payouts.get_account(conn, user_id=2, vault=only_new)
    assert (shown["holder"], shown["account_number_masked"]) == ("u2", "***-****-8901")
