"""The ``missionlink`` command: serve, worker, migrate, admin, reconcile, dead-letters,
payments, payouts."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from pydantic import ValidationError

from missionlink.config import DEFAULT_HOST, DEFAULT_PORT, Settings, public_url_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from missionlink.services.reconcile import Report


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        messages = "; ".join(str(e["msg"]) for e in exc.errors())
        sys.exit(f"missionlink: invalid settings: {messages}")


PUBLIC_URL_ENV = "MISSIONLINK_PUBLIC_URL"


def _exit_quietly(_signum: int, _frame: FrameType | None) -> None:
    sys.exit(0)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from missionlink.api.server import DeadlineHttpProtocol

    # Absolute links (the overlay URL) point where this server listens unless PUBLIC_URL
    # says otherwise; every process, and the in-process worker, reads it from here.
    if not os.environ.get(PUBLIC_URL_ENV):
        os.environ[PUBLIC_URL_ENV] = public_url_for(args.host, args.port)
    settings = _settings()
    if settings.embedded and args.workers > 1:
        print(
            "missionlink: --workers above 1 needs PostgreSQL (MISSIONLINK_DATABASE_URL); "
            "the embedded SQLite default runs as one process.",
            file=sys.stderr,
        )
        return 2
    if not settings.broker_url and args.workers > 1:
        # Each process would have its own in-process broker: overlay events, read-model
        # invalidations and session revocations would not reach the other processes.
        print(
            "missionlink: --workers above 1 needs a shared broker (MISSIONLINK_BROKER_URL); "
            "with an empty BROKER_URL each process would keep its events to itself.",
            file=sys.stderr,
        )
        return 2
    if settings.embedded:
        # Imported only here: Alembic and its templates stay out of an API process's memory.
        from missionlink.migrations.runner import upgrade_all

        upgrade_all(settings)
    # The in-process worker runs beside the API unless a separate `missionlink worker` runs.
    os.environ.setdefault("MISSIONLINK_SERVE_WORKER", "1" if not settings.broker_url else "0")
    # Each process serves its metrics on the first free port of API_METRICS_PORT ..
    # API_METRICS_PORT + workers - 1, on the address the API binds.
    from missionlink.observability.metrics_listener import HOST_ENV, PROCESSES_ENV

    os.environ[PROCESSES_ENV] = str(args.workers)
    os.environ[HOST_ENV] = args.host
    # uvicorn handles SIGTERM itself (requests in flight finish, live streams end), then
    # raises the signal again under the handler it found: this one, so a graceful stop
    # exits 0 rather than "killed by SIGTERM". Before uvicorn starts it just exits.
    signal.signal(signal.SIGTERM, _exit_quietly)
    uvicorn.run(
        "missionlink.asgi:create_from_env",
        factory=True,
        # uvicorn's protocol plus deadlines for slow senders and stalled readers.
        http=DeadlineHttpProtocol,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,
        log_level="info",
        access_log=False,  # the app logs one structured line per request itself
        # Overlay streams would hold a shutdown for minutes; clients resume on their own.
        timeout_graceful_shutdown=10,
    )
    return 0


def cmd_worker(_: argparse.Namespace) -> int:
    from missionlink.workers.runner import run_standalone

    settings = _settings()
    asyncio.run(run_standalone(settings))
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    from missionlink.migrations.runner import upgrade_all

    upgrade_all(_settings())
    print("migrated: identity, core")
    return 0


async def _reconcile(settings: Settings) -> Report:
    from missionlink.adapters.db.engine import Database, Timeouts
    from missionlink.services.reconcile import check_measured

    db = Database(settings.core_url, timeouts=Timeouts.of(settings))
    try:
        async with db.read() as conn:
            return await check_measured(conn)
    finally:
        await db.dispose()


def cmd_reconcile(_: argparse.Namespace) -> int:
    report = asyncio.run(_reconcile(_settings()))
    print(report.render())
    return 0 if report.ok else 1


async def sync_payments(settings: Settings, *, older_than_seconds: int,
                        limit: int) -> tuple[dict[str, int], dict[str, int]]:
    """Apply what the payment provider says about top-ups still open, and refunds still
    pending, after a while: counts per resulting state of each."""
    from datetime import UTC, datetime, timedelta

    from missionlink import bootstrap
    from missionlink.adapters.db.engine import Database, Timeouts
    from missionlink.services import refunds, wallet

    provider = bootstrap.payment_provider(settings)
    if provider.name not in ("portone", "stripe"):
        return {}, {}
    db = Database(settings.core_url, timeouts=Timeouts.of(settings))
    older_than = timedelta(seconds=older_than_seconds)
    try:
        topups = await wallet.sync_topups(db, provider, now=datetime.now(UTC),
                                          older_than=older_than, limit=limit)
        pending = await refunds.sync_refunds(db, provider, now=datetime.now(UTC),
                                             older_than=older_than, limit=limit)
        return topups, pending
    finally:
        await db.dispose()


def cmd_payments_sync(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings.payment_provider not in ("portone", "stripe"):
        print(f"nothing to sync: PAYMENT_PROVIDER={settings.payment_provider} "
              "is not looked up")
        return 0
    counts, refunded = asyncio.run(sync_payments(settings, older_than_seconds=args.older_than,
                                                 limit=args.limit))
    print("top-ups looked up: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                                   or "none open"))
    print("refunds looked up: " + (", ".join(f"{k} {v}" for k, v in sorted(refunded.items()))
                                   or "none pending"))
    return 0


async def payout_keys(settings: Settings, *, rewrap: bool) -> tuple[dict[str, dict[str, int]],
                                                                    int]:
    """Which key ids seal payout accounts (per table); with ``rewrap``, first move every
    record to the current key. The rewrapped count comes second."""
    from missionlink.adapters.db.engine import Database, Timeouts
    from missionlink.adapters.security.vault import vault_from_setting
    from missionlink.services import payout_batches

    vault = vault_from_setting(settings.payout_account_keys.get_secret_value())
    db = Database(settings.core_url, timeouts=Timeouts.of(settings))
    moved = 0
    try:
        if rewrap and vault is not None:
            current = vault
            while True:
                async def batch(conn: AsyncConnection) -> int:
                    return await payout_batches.rewrap(conn, vault=current)

                n = await db.transaction(batch)
                moved += n
                if n == 0:
                    break
        async with db.read() as conn:
            return await payout_batches.key_usage(conn), moved
    finally:
        await db.dispose()


def cmd_payouts_keys(args: argparse.Namespace) -> int:
    from missionlink.adapters.security.vault import parse_keys

    settings = _settings()
    configured = list(parse_keys(settings.payout_account_keys.get_secret_value()))
    if args.rewrap and not configured:
        print("PAYOUT_ACCOUNT_KEYS is empty: nothing to rewrap to")
        return 1
    usage, moved = asyncio.run(payout_keys(settings, rewrap=args.rewrap))
    print("configured: " + (", ".join(
        f"{k}{' (current)' if i == 0 else ''}" for i, k in enumerate(configured)) or "none"))
    for kid in sorted(usage):
        where = ", ".join(f"{table} {n}" for table, n in sorted(usage[kid].items()))
        note = "" if kid in configured else "  NOT CONFIGURED: these records do not open"
        print(f"in use: {kid}: {where}{note}")
    if not usage:
        print("in use: none")
    if args.rewrap:
        print(f"rewrapped: {moved}")
    return 0 if all(k in configured for k in usage) else 1


def cmd_payouts_new_key(args: argparse.Namespace) -> int:
    from missionlink.adapters.security.vault import new_key_spec

    print(new_key_spec(args.key_id))
    return 0


async def create_admin(settings: Settings, *, email: str, password: str, display_name: str) -> int:
    """Create an admin in the identity database and their member records in the core (the
    only way to make an admin account)."""
    from missionlink import bootstrap
    from missionlink.domain.errors import DomainError
    from missionlink.services import identity

    if settings.embedded:
        # Like `serve`, bring the embedded SQLite default up to date on first use.
        from missionlink.migrations.runner import upgrade_all

        await asyncio.to_thread(upgrade_all, settings)
    container = bootstrap.build(settings)
    try:
        user = await identity.register(
            container.accounts,
            email=email,
            password=password,
            display_name=display_name,
            role="admin",
            language="ko",
        )
    except DomainError as exc:
        raise SystemExit(f"missionlink: cannot create the admin: {exc.detail}") from exc
    finally:
        await container.close()
    return user.id


def cmd_admin_create(args: argparse.Namespace) -> int:
    password = args.password or os.environ.get("MISSIONLINK_ADMIN_PASSWORD")
    if not password:
        import getpass

        password = getpass.getpass("Password for the new admin: ")
    user_id = asyncio.run(
        create_admin(_settings(), email=args.email, password=password, display_name=args.name)
    )
    print(f"admin created: id={user_id} email={args.email}")
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from missionlink.workers.dead_letters import (
        describe,
        list_dead_letters,
        parse_id,
        replay_dead_letter,
    )

    settings = _settings()
    if args.action == "list":
        rows = asyncio.run(list_dead_letters(settings))
        if not rows:
            print("no dead letters")
        for row in rows:
            print(describe(row))
        return 0
    if args.id is None:
        print("missionlink: dead-letters replay needs an id (event:N or email:N)",
              file=sys.stderr)
        return 2
    try:
        dead_letter = parse_id(args.id)
    except ValueError as exc:
        print(f"missionlink: {exc}", file=sys.stderr)
        return 2
    ok = asyncio.run(replay_dead_letter(settings, dead_letter))
    print(f"replayed {dead_letter}" if ok
          else f"no such dead letter (or already replayed): {dead_letter}")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="missionlink", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API and web front end")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("worker", help="run the outbox worker alone").set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="upgrade both databases").set_defaults(func=cmd_migrate)
    sub.add_parser("reconcile", help="check every ledger invariant").set_defaults(
        func=cmd_reconcile
    )

    payments = sub.add_parser("payments", help="payment provider upkeep")
    payments_sub = payments.add_subparsers(dest="payments_command", required=True)
    sync = payments_sub.add_parser(
        "sync", help="ask the provider about top-ups still open and refunds still pending, "
                     "and apply its answer")
    sync.add_argument("--older-than", type=int, default=600, metavar="SECONDS",
                      help="only top-ups opened, and refunds last asked, at least this long "
                           "ago (default 600)")
    sync.add_argument("--limit", type=int, default=500)
    sync.set_defaults(func=cmd_payments_sync)

    payout_cmd = sub.add_parser("payouts", help="payout account keys")
    payout_sub = payout_cmd.add_subparsers(dest="payouts_command", required=True)
    keys = payout_sub.add_parser(
        "keys", help="show the key ids sealing payout accounts; --rewrap moves them to the "
                     "current (first) key of PAYOUT_ACCOUNT_KEYS")
    keys.add_argument("--rewrap", action="store_true")
    keys.set_defaults(func=cmd_payouts_keys)
    new_key = payout_sub.add_parser(
        "new-key", help="print a fresh '<id>:<base64 key>' entry for PAYOUT_ACCOUNT_KEYS")
    new_key.add_argument("key_id", nargs="?", default="dev1")
    new_key.set_defaults(func=cmd_payouts_new_key)

    admin = sub.add_parser("admin", help="administration")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser("create", help="create an admin account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="Admin")
    create.add_argument("--password", help="or MISSIONLINK_ADMIN_PASSWORD, or a prompt")
    create.set_defaults(func=cmd_admin_create)

    dead = sub.add_parser(
        "dead-letters", help="list or replay events and result emails that kept failing"
    )
    dead.add_argument("action", choices=["list", "replay"])
    dead.add_argument("id", nargs="?", help="as listed: event:N or email:N")
    dead.set_defaults(func=cmd_dead_letters)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from missionlink.observability.memory import pin_mmap_threshold

    args = build_parser().parse_args(argv)
    pin_mmap_threshold()
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
