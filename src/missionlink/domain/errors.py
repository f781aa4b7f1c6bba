"""Domain errors: each has a stable code (listed in docs/errors.md) and a title.

How each is answered over HTTP is the API's business (``api/problems.py::HTTP_STATUS``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any


class DomainError(Exception):
    code = "error"
    title = "Bad request"

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after

    def fields(self) -> dict[str, Any]:
        """More members of the problem document, beside ``detail`` (none by default)."""
        return {}


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One refused field: a stable ``code`` (listed in docs/errors.md) with the ``params``
    a client needs to say it in its own language, and the English ``message``."""

    field: str | None
    code: str
    message: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class InvalidInput(DomainError):
    """Input refused; ``errors`` names every refused field it knows of, each with a code."""

    code = "invalid-input"
    title = "Invalid input"

    def __init__(self, detail: str, *, retry_after: int | None = None,
                 errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.errors = tuple(errors)

    @classmethod
    def of(cls, field_name: str | None, code: str, message: str, *, detail: str | None = None,
           **params: Any) -> InvalidInput:
        """One refused field; ``detail`` defaults to ``"<field>: <message>"``."""
        if detail is None:
            detail = f"{field_name}: {message}" if field_name else message
        return cls(detail, errors=[FieldError(field_name, code, message, params)])

    @classmethod
    def malformed_cursor(cls) -> InvalidInput:
        return cls.of("cursor", "malformed", "is malformed", detail="cursor is malformed")

    @classmethod
    def all(cls, errors: Sequence[FieldError]) -> InvalidInput:
        """Several refused fields at once; the detail names the first (a range as
        ``"<field> must be between ..."``, everything else as ``"<field>: <message>"``)."""
        first = errors[0]
        sep = " " if first.code == "out-of-range" else ": "
        detail = f"{first.field}{sep}{first.message}" if first.field else first.message
        return cls(detail, errors=errors)

    @classmethod
    def raise_any(cls, errors: Sequence[FieldError | None]) -> None:
        """Raise for every refused field at once; nothing when all are None."""
        found = [e for e in errors if e is not None]
        if found:
            raise cls.all(found)


def range_error(field_name: str, value: int, low: int, high: int, *, unit: str = ""
                ) -> FieldError | None:
    """None when ``low <= value <= high``, else the field coded ``out-of-range``."""
    if low <= value <= high:
        return None
    message = f"must be between {low} and {high}" + (f" {unit}" if unit else "")
    return FieldError(field_name, "out-of-range", message, {"min": low, "max": high})


def check_range(field_name: str, value: int, low: int, high: int, *, unit: str = "") -> None:
    """``low <= value <= high``, else InvalidInput coded ``out-of-range`` with both bounds."""
    InvalidInput.raise_any([range_error(field_name, value, low, high, unit=unit)])


class NotAuthenticated(DomainError):
    code = "not-authenticated"
    title = "Not authenticated"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Forbidden"


class NotFound(DomainError):
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class InsufficientFunds(Conflict):
    code = "insufficient-funds"
    title = "Insufficient funds"


class WalletInDebt(Conflict):
    """A chargeback left the wallet owing ``debt`` KRW: no pledge or bet until it is repaid."""

    code = "wallet-in-debt"
    title = "Wallet in debt"

    def __init__(self, debt: int) -> None:
        super().__init__(f"a chargeback left this wallet {debt} KRW in debt; pledges and "
                         f"bets are refused until it is repaid")
        self.debt = debt

    def fields(self) -> dict[str, Any]:
        return {"debt": self.debt}


class InvalidState(Conflict):
    code = "invalid-state"
    title = "Mission state does not allow this"


class DeadlinePassed(Conflict):
    code = "deadline-passed"
    title = "Deadline passed"


class ProposalBlocked(Conflict):
    code = "proposal-blocked"
    title = "Proposal not allowed yet"


class DuplicateEmail(Conflict):
    code = "email-taken"
    title = "Email already registered"


class IdempotencyInProgress(Conflict):
    code = "idempotency-in-progress"
    title = "A request with this Idempotency-Key is still running"


class IdempotencyMismatch(DomainError):
    code = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different request"


class RateLimited(DomainError):
    code = "rate-limited"
    title = "Too many requests"
    #: Which limit refused: signup, login, pledge, post, stream or other (a metric label).
    limit = "other"

    def __init__(self, detail: str, *, retry_after: int | None = None,
                 limit: str | None = None) -> None:
        super().__init__(detail, retry_after=retry_after)
        if limit is not None:
            self.limit = limit


class PaymentMismatch(Conflict):
    code = "payment-mismatch"
    title = "Payment does not match the top-up"


class DailyTopupLimit(Conflict):
    code = "daily-topup-limit"
    title = "Daily top-up limit reached"


class ProviderUnavailable(DomainError):
    code = "payment-provider-unavailable"
    title = "Payment provider unavailable"


class TopupNotRefundable(Conflict):
    code = "topup-not-refundable"
    title = "This top-up cannot be refunded"


class RefundWindowClosed(Conflict):
    code = "refund-window-closed"
    title = "The refund window of this top-up has closed"


class RefundExceedsRefundable(Conflict):
    """A refund larger than what is left to refund; ``refundable`` says how much is."""

    code = "refund-exceeds-refundable"
    title = "Refund larger than the refundable amount"

    def __init__(self, detail: str, *, refundable: int = 0) -> None:
        super().__init__(detail)
        self.refundable = refundable


class NotWithdrawable(Conflict):
    code = "not-withdrawable"
    title = "More than is withdrawable"


class PayoutAccountMissing(Conflict):
    code = "payout-account-missing"
    title = "No payout account registered"


class PayoutAccountCoolingDown(Conflict):
    """The payout account was registered or changed too recently; ``retry_after`` says
    in how many seconds a withdrawal may be requested."""

    code = "payout-account-cooling-down"
    title = "The payout account was changed recently"


class WithdrawalState(Conflict):
    code = "withdrawal-state"
    title = "The withdrawal's state does not allow this"


class PayoutsUnavailable(DomainError):
    code = "payouts-unavailable"
    title = "Payouts are not configured"
