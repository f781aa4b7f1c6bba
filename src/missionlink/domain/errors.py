"""Domain errors: each has a stable code (listed in docs/errors.md) and a title.

How each is answered over HTTP is the API's business (``api/problems.py::HTTP_STATUS``)."""

from __future__ import annotations


class DomainError(Exception):
    code = "error"
    title = "Bad request"

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class InvalidInput(DomainError):
    code = "invalid-input"
    title = "Invalid input"


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
