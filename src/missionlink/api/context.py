"""What the HTTP layer reads from the wiring: settings, the clock, the databases and the
adapters, as one protocol.

``bootstrap.Container`` has all of these; the app factory (``api/app.py``) puts it in
``app.state.container`` and handlers get it through ``deps.Deps``. Nothing else in
``api/`` imports ``bootstrap``, so a handler states what it uses and never builds
anything (the ``api-no-wiring`` import contract).
"""

from __future__ import annotations

from typing import Protocol

from missionlink.adapters.broker.inprocess import Broker
from missionlink.adapters.payments.providers import PaymentProvider
from missionlink.adapters.security.rate_limit import RateLimiter
from missionlink.adapters.security.revocations import SessionRevocations
from missionlink.adapters.security.tokens import TokenService
from missionlink.adapters.security.vault import Vault
from missionlink.config import Settings
from missionlink.domain.clock import Clock
from missionlink.services.identity import Accounts
from missionlink.services.notices import CommitNotices
from missionlink.services.pledges import PledgeDesk
from missionlink.services.ports import Transactions
from missionlink.services.read_model import ReadCache


class AppContext(Protocol):
    """The settings and ports HTTP handlers use (``bootstrap.Container`` provides them)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def identity_db(self) -> Transactions: ...
    @property
    def core_db(self) -> Transactions: ...
    @property
    def tokens(self) -> TokenService: ...
    @property
    def payments(self) -> PaymentProvider: ...
    @property
    def broker(self) -> Broker: ...
    @property
    def limiter(self) -> RateLimiter: ...
    @property
    def sessions(self) -> SessionRevocations: ...
    @property
    def read_cache(self) -> ReadCache: ...
    @property
    def pledges(self) -> PledgeDesk: ...
    @property
    def notices(self) -> CommitNotices: ...
    @property
    def accounts(self) -> Accounts: ...
    @property
    def vault(self) -> Vault | None: ...
