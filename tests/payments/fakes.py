"""Local fakes of the PortOne V2 and Stripe HTTP APIs, run as real HTTP servers.

Only what MissionLink calls is implemented, in the providers' own wire formats, so the
official SDKs talk to them unchanged: PortOne's pre-register, payment lookup and payment
cancellation, Stripe's PaymentIntent create and retrieve, refund create, retrieve and
list, and dispute retrieve. A test plays the payer and the provider's back office through
the Python methods (``pay``, ``issue_virtual_account``, ``fail``, ``cancel``,
``portone_take_back``, ``stripe_dispute``), and
sends webhooks signed with the providers' real algorithms (``portone_webhook``,
``stripe_webhook``), which the application verifies with the SDKs' own functions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

NOW = "2026-01-01T00:00:00Z"
PORTONE_SECRET = "portone-api-secret-for-tests"
PORTONE_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"portone webhook secret 32 bytes!").decode()
PORTONE_STORE = "store-00000000-0000-0000-0000-000000000001"
STRIPE_SECRET = "sk_test_missionlink"
STRIPE_WEBHOOK_SECRET = "whsec_stripe_missionlink_tests"


@dataclass
class Fakes:
    """Both providers' state, shared with the server thread."""

    portone: dict[str, dict[str, Any]] = field(default_factory=dict)
    stripe: dict[str, dict[str, Any]] = field(default_factory=dict)
    stripe_keys: dict[str, str] = field(default_factory=dict)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""
    #: While set, every call answers 500, as a provider in an outage does.
    down: bool = False
    #: How the next refunds end: "succeeded" at once, "pending" (settled later through
    #: ``settle_refund``), or "refused" (PortOne: the PG declines; Stripe: 400).
    refund_mode: str = "succeeded"
    stripe_refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: While set, a refund is made at the provider but its answer is lost (a 500).
    lose_refund_answer: bool = False

    # -- PortOne: the payer and the back office -------------------------------------------
    def portone_pay(self, payment_id: str, *, amount: int | None = None,
                    currency: str = "KRW") -> None:
        with self.lock:
            p = self.portone[payment_id]
            p.update(status="PAID", paid=p["amount"] if amount is None else amount,
                     currency=currency)

    def portone_partial_cancel(self, payment_id: str, cancelled: int) -> None:
        """Paid in full, then part of it cancelled at PortOne (before we credited it)."""
        with self.lock:
            p = self.portone[payment_id]
            p.update(status="PARTIAL_CANCELLED", paid=p["amount"], cancelled=cancelled)

    def portone_virtual_account(self, payment_id: str) -> None:
        with self.lock:
            self.portone[payment_id]["status"] = "VIRTUAL_ACCOUNT_ISSUED"

    def portone_fail(self, payment_id: str, reason: str = "카드 한도 초과") -> None:
        with self.lock:
            self.portone[payment_id].update(status="FAILED", reason=reason)

    def portone_cancel(self, payment_id: str, reason: str = "구매자 취소") -> None:
        with self.lock:
            self.portone[payment_id].update(status="CANCELLED", reason=reason)

    def portone_cancellations(self, payment_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.portone[payment_id].get("cancellations", []))

    def settle_refund(self, provider: str, refund_id: str, status: str) -> None:
        """The provider's back office finishes a pending refund (``succeeded``/``failed``)."""
        with self.lock:
            if provider == "stripe":
                r = self.stripe_refunds[refund_id]
                r["status"] = status
                if status == "failed":
                    r["failure_reason"] = "expired_or_canceled_card"
                    pi = self.stripe[r["payment_intent"]]
                    pi["amount_refunded"] -= r["amount"]
                return
            for p in self.portone.values():
                for c in p.get("cancellations", []):
                    if c["id"] == refund_id:
                        c["status"] = "SUCCEEDED" if status == "succeeded" else "FAILED"
                        if status == "failed":
                            p["cancelled"] -= c["totalAmount"]
                        elif p["cancelled"]:
                            c["cancelledAt"] = NOW
                            p["status"] = ("CANCELLED" if p["cancelled"] == p["paid"]
                                           else "PARTIAL_CANCELLED")

    def portone_take_back(self, payment_id: str, amount: int, *,
                          trigger: str = "CHARGEBACK", reason: str = "카드사 차지백") -> str:
        """A cancellation of a paid payment that MissionLink did not ask for (the card
        company's chargeback, the console): what is left cancels it whole, less in part."""
        with self.lock:
            p = self.portone[payment_id]
            cid = f"cancel-{uuid.uuid4().hex[:12]}"
            p.setdefault("cancellations", []).append({
                "status": "SUCCEEDED", "id": cid, "totalAmount": amount, "taxFreeAmount": 0,
                "vatAmount": 0, "reason": reason, "requestedAt": NOW, "cancelledAt": NOW,
                "trigger": trigger})
            p["cancelled"] = p.get("cancelled", 0) + amount
            p["status"] = "CANCELLED" if p["cancelled"] >= p["paid"] else "PARTIAL_CANCELLED"
            return cid

    # -- Stripe -------------------------------------------------------------------------
    def stripe_pay(self, intent_id: str, *, amount: int | None = None,
                   currency: str = "krw") -> None:
        with self.lock:
            pi = self.stripe[intent_id]
            pi.update(status="succeeded", currency=currency,
                      amount_received=pi["amount"] if amount is None else amount)

    def stripe_fail(self, intent_id: str, message: str = "Your card was declined.") -> None:
        with self.lock:
            self.stripe[intent_id].update(
                status="requires_payment_method",
                last_payment_error={"type": "card_error", "code": "card_declined",
                                    "message": message})

    def stripe_cancel(self, intent_id: str) -> None:
        with self.lock:
            self.stripe[intent_id].update(status="canceled",
                                          cancellation_reason="abandoned")

    def stripe_dashboard_refund(self, intent_id: str, amount: int, *,
                                status: str = "succeeded") -> dict[str, Any]:
        """A refund made in the Stripe dashboard, not through our API: no metadata of ours."""
        with self.lock:
            pi = self.stripe[intent_id]
            rid = f"re_{uuid.uuid4().hex[:24]}"
            refund = {"id": rid, "object": "refund", "amount": amount, "currency": "krw",
                      "payment_intent": intent_id, "charge": f"ch_{intent_id[3:]}",
                      "status": status, "failure_reason": None,
                      "reason": "requested_by_customer", "created": int(time.time()),
                      "metadata": {}}
            self.stripe_refunds[rid] = refund
            pi["amount_refunded"] = pi.get("amount_refunded", 0) + amount
            return dict(refund)

    def stripe_dispute(self, intent_id: str, *, amount: int | None = None,
                       status: str = "needs_response", dispute_id: str | None = None,
                       currency: str = "krw") -> dict[str, Any]:
        """Open (or move, given ``dispute_id``) a dispute on a paid PaymentIntent."""
        with self.lock:
            if dispute_id is not None:
                self.disputes[dispute_id]["status"] = status
                return dict(self.disputes[dispute_id])
            pi = self.stripe[intent_id]
            did = f"dp_{uuid.uuid4().hex[:24]}"
            self.disputes[did] = {
                "id": did, "object": "dispute", "charge": f"ch_{intent_id[3:]}",
                "payment_intent": intent_id, "currency": currency, "status": status,
                "amount": pi["amount_received"] if amount is None else amount,
                "reason": "fraudulent", "created": int(time.time()), "livemode": False,
                "is_charge_refundable": False, "metadata": {}, "balance_transactions": []}
            return dict(self.disputes[did])


def _portone_payment(pid: str, p: dict[str, Any]) -> dict[str, Any]:
    status = p["status"]
    paid = p.get("paid", 0) if status in ("PAID", "PARTIAL_CANCELLED") else 0
    body: dict[str, Any] = {
        "status": status, "id": pid, "transactionId": f"tx-{pid}", "merchantId": "merchant-1",
        "storeId": p["store_id"], "version": "V2", "requestedAt": NOW, "updatedAt": NOW,
        "statusChangedAt": NOW, "orderName": "MissionLink 충전",
        "amount": {"total": p["amount"], "taxFree": 0, "discount": 0, "paid": paid,
                   "cancelled": p.get("cancelled", 0), "cancelledTaxFree": 0},
        "currency": p.get("currency", "KRW"), "customer": {},
        "origin": {"platformType": "PC", "ipAddress": "127.0.0.1"},
        "channel": {"type": "TEST", "pgProvider": "TOSSPAYMENTS", "pgMerchantId": "tosstest"},
        "disputes": [],
    }
    if status == "PAID":
        body.update(paidAt=NOW, method={"type": "PaymentMethodEasyPay", "provider": "KAKAOPAY"})
    elif status == "VIRTUAL_ACCOUNT_ISSUED":
        body["method"] = {"type": "PaymentMethodVirtualAccount", "bank": "SHINHAN",
                          "accountNumber": "56211234567890", "remitteeName": "미션링크",
                          "expiredAt": "2026-01-03T15:00:00Z", "issuedAt": NOW}
    elif status == "FAILED":
        body.update(failedAt=NOW, failure={"reason": p.get("reason")})
    if p.get("cancellations"):
        body["cancellations"] = p["cancellations"]
        body.update(paidAt=NOW, cancelledAt=NOW)
        if status == "PAID":
            # Requested (not yet done) cancellations leave a payment PAID at PortOne.
            body.pop("cancelledAt")
    elif status == "PARTIAL_CANCELLED":
        body.update(paidAt=NOW, cancelledAt=NOW, cancellations=[{
            "status": "SUCCEEDED", "id": "c-1", "totalAmount": p["cancelled"],
            "taxFreeAmount": 0, "vatAmount": 0, "reason": "부분 취소",
            "requestedAt": NOW, "cancelledAt": NOW, "trigger": "CONSOLE"}])
    elif status == "CANCELLED":
        body.update(cancelledAt=NOW, cancellations=[{
            "status": "SUCCEEDED", "id": "c-1", "totalAmount": p["amount"],
            "taxFreeAmount": 0, "vatAmount": 0, "reason": p.get("reason", ""),
            "requestedAt": NOW, "cancelledAt": NOW, "trigger": "CONSOLE"}])
    return body


def _handler(fakes: Fakes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            self._route("GET", b"")

        def do_POST(self) -> None:
            self._route("POST", self._body())

        def _route(self, method: str, raw: bytes) -> None:
            path = urlsplit(self.path).path
            fakes.requests.append((method, path))
            auth = self.headers.get("Authorization", "")
            parts = [unquote(x) for x in path.strip("/").split("/")]
            with fakes.lock:
                if fakes.down:
                    return self._send(500, {"type": "UNKNOWN", "message": "outage",
                                            "error": {"type": "api_error",
                                                      "message": "outage"}})
                if parts[0] == "payments":
                    if auth != f"PortOne {PORTONE_SECRET}":
                        return self._send(401, {"type": "UNAUTHORIZED", "message": "bad secret"})
                    return self._portone(method, parts[1:], raw)
                if parts[:2] == ["v1", "refunds"]:
                    if auth != f"Bearer {STRIPE_SECRET}":
                        return self._send(401, {"error": {"type": "invalid_request_error",
                                                          "message": "Invalid API Key"}})
                    return self._stripe_refund(method, parts[2:], raw)
                if parts[:2] == ["v1", "disputes"]:
                    if auth != f"Bearer {STRIPE_SECRET}":
                        return self._send(401, {"error": {"type": "invalid_request_error",
                                                          "message": "Invalid API Key"}})
                    if method == "GET" and len(parts) == 3 and parts[2] in fakes.disputes:
                        return self._send(200, fakes.disputes[parts[2]])
                    return self._send(404, {"error": {"type": "invalid_request_error",
                                                      "code": "resource_missing",
                                                      "message": "No such dispute"}})
                if parts[:2] == ["v1", "payment_intents"]:
                    if auth != f"Bearer {STRIPE_SECRET}":
                        return self._send(401, {"error": {"type": "invalid_request_error",
                                                          "message": "Invalid API Key"}})
                    return self._stripe(method, parts[2:], raw)
            self._send(404, {"message": "no such route in the fake"})

        def _portone(self, method: str, rest: list[str], raw: bytes) -> None:
            if method == "POST" and len(rest) == 2 and rest[1] == "pre-register":
                body = json.loads(raw)
                fakes.portone[rest[0]] = {"status": "READY", "amount": body["totalAmount"],
                                          "currency": body.get("currency", "KRW"),
                                          "store_id": body.get("storeId", PORTONE_STORE)}
                return self._send(200, {})
            if method == "POST" and len(rest) == 2 and rest[1] == "cancel":
                return self._portone_cancel(rest[0], json.loads(raw))
            if method == "GET" and len(rest) == 1:
                p = fakes.portone.get(rest[0])
                if p is None or p["status"] == "READY":
                    return self._send(404, {"type": "PAYMENT_NOT_FOUND",
                                            "message": "결제 건이 존재하지 않습니다."})
                return self._send(200, _portone_payment(rest[0], p))
            self._send(404, {"type": "PAYMENT_NOT_FOUND", "message": "no route"})

        def _portone_cancel(self, pid: str, body: dict[str, Any]) -> None:
            p = fakes.portone.get(pid)
            if p is not None and p["status"] == "CANCELLED":
                return self._send(409, {"type": "PAYMENT_ALREADY_CANCELLED",
                                        "message": "이미 취소된 결제입니다."})
            if p is None or p["status"] not in ("PAID", "PARTIAL_CANCELLED"):
                return self._send(409, {"type": "PAYMENT_NOT_PAID",
                                        "message": "결제가 완료되지 않았습니다."})
            cancellable = p["paid"] - p.get("cancelled", 0)
            amount = int(body.get("amount") or cancellable)
            if body.get("currentCancellableAmount", cancellable) != cancellable:
                return self._send(409, {"type": "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN",
                                        "message": "취소 가능 잔액 검증에 실패했습니다."})
            if amount > cancellable:
                return self._send(409, {"type": "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT",
                                        "message": "취소 금액이 취소 가능 금액을 초과합니다."})
            if fakes.refund_mode == "refused":
                return self._send(400, {"type": "PG_PROVIDER", "message": "PG사 오류",
                                        "pgCode": "CANCEL_REFUSED",
                                        "pgMessage": "환불할 수 없는 카드입니다"})
            done = fakes.refund_mode == "succeeded"
            c = {"status": "SUCCEEDED" if done else "REQUESTED",
                 "id": f"cancel-{uuid.uuid4().hex[:12]}", "totalAmount": amount,
                 "taxFreeAmount": 0, "vatAmount": 0, "reason": body.get("reason", ""),
                 "requestedAt": NOW, "trigger": "API"}
            if done:
                c["cancelledAt"] = NOW
            p.setdefault("cancellations", []).append(c)
            p["cancelled"] = p.get("cancelled", 0) + amount
            if done:
                p["status"] = "CANCELLED" if p["cancelled"] == p["paid"] else "PARTIAL_CANCELLED"
            if fakes.lose_refund_answer:
                return self._send(500, {"type": "UNKNOWN", "message": "lost"})
            return self._send(200, {"cancellation": c})

        def _stripe_refund(self, method: str, rest: list[str], raw: bytes) -> None:
            if method == "POST" and not rest:
                form = dict(parse_qsl(raw.decode()))
                key = self.headers.get("Idempotency-Key", "")
                if key and key in fakes.stripe_keys:
                    if fakes.lose_refund_answer:
                        return self._send(500, {"error": {"type": "api_error",
                                                          "message": "lost"}})
                    return self._send(200, fakes.stripe_refunds[fakes.stripe_keys[key]])
                pi = fakes.stripe.get(form.get("payment_intent", ""))
                amount = int(form.get("amount") or 0)
                if pi is None or pi["status"] != "succeeded":
                    return self._send(400, {"error": {
                        "type": "invalid_request_error", "code": "resource_missing",
                        "message": "No such payment_intent"}})
                if amount > pi["amount_received"] - pi.get("amount_refunded", 0):
                    return self._send(400, {"error": {
                        "type": "invalid_request_error", "code": "amount_too_large",
                        "message": "Refund amount is greater than unrefunded amount"}})
                if fakes.refund_mode == "refused":
                    return self._send(400, {"error": {
                        "type": "invalid_request_error", "code": "charge_disputed",
                        "message": "This charge is disputed and cannot be refunded"}})
                rid = f"re_{uuid.uuid4().hex[:24]}"
                refund = {"id": rid, "object": "refund", "amount": amount, "currency": "krw",
                          "payment_intent": pi["id"], "charge": f"ch_{pi['id'][3:]}",
                          "status": fakes.refund_mode, "failure_reason": None,
                          "reason": form.get("reason"), "created": int(time.time()),
                          "metadata": {k[9:-1]: v for k, v in form.items()
                                       if k.startswith("metadata[")}}
                fakes.stripe_refunds[rid] = refund
                pi["amount_refunded"] = pi.get("amount_refunded", 0) + amount
                if key:
                    fakes.stripe_keys[key] = rid
                if fakes.lose_refund_answer:
                    return self._send(500, {"error": {"type": "api_error", "message": "lost"}})
                return self._send(200, refund)
            if method == "GET" and not rest:
                pid = dict(parse_qsl(urlsplit(self.path).query)).get("payment_intent")
                data = [r for r in fakes.stripe_refunds.values() if r["payment_intent"] == pid]
                return self._send(200, {"object": "list", "data": data, "has_more": False,
                                        "url": "/v1/refunds"})
            if method == "GET" and len(rest) == 1 and rest[0] in fakes.stripe_refunds:
                return self._send(200, fakes.stripe_refunds[rest[0]])
            self._send(404, {"error": {"type": "invalid_request_error",
                                       "code": "resource_missing", "message": "No such refund"}})

        def _stripe(self, method: str, rest: list[str], raw: bytes) -> None:
            if method == "POST" and not rest:
                form = dict(parse_qsl(raw.decode()))
                key = self.headers.get("Idempotency-Key", "")
                if key and key in fakes.stripe_keys:
                    return self._send(200, fakes.stripe[fakes.stripe_keys[key]])
                pid = f"pi_{uuid.uuid4().hex[:24]}"
                pi = {"id": pid, "object": "payment_intent", "amount": int(form["amount"]),
                      "amount_received": 0, "currency": form["currency"],
                      "status": "requires_payment_method",
                      "client_secret": f"{pid}_secret_{secrets.token_hex(8)}",
                      "last_payment_error": None, "cancellation_reason": None,
                      "metadata": {k[9:-1]: v for k, v in form.items()
                                   if k.startswith("metadata[")},
                      "created": int(time.time()), "livemode": False}
                fakes.stripe[pid] = pi
                if key:
                    fakes.stripe_keys[key] = pid
                return self._send(200, pi)
            if method == "GET" and len(rest) == 1 and rest[0] in fakes.stripe:
                pi = dict(fakes.stripe[rest[0]])
                if pi["status"] == "succeeded":
                    charge = {"id": f"ch_{pi['id'][3:]}", "object": "charge",
                              "payment_intent": pi["id"], "amount": pi["amount_received"],
                              "amount_refunded": pi.get("amount_refunded", 0)}
                    query = parse_qsl(urlsplit(self.path).query)
                    expanded = ("expand[0]", "latest_charge") in query
                    pi["latest_charge"] = charge if expanded else charge["id"]
                return self._send(200, pi)
            self._send(404, {"error": {"type": "invalid_request_error",
                                       "code": "resource_missing",
                                       "message": "No such payment_intent"}})

    return Handler


@contextmanager
def serve() -> Iterator[Fakes]:
    fakes = Fakes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fakes))
    fakes.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fakes
    finally:
        server.shutdown()
        server.server_close()


# -- webhooks, signed as the providers sign them ------------------------------------------

def portone_webhook(kind: str, payment_id: str, *, secret: str = PORTONE_WEBHOOK_SECRET,
                    timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A PortOne V2 webhook (``Transaction.Paid`` and the like) with its Standard Webhooks
    signature: base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under the decoded secret."""
    data = {"paymentId": payment_id, "storeId": PORTONE_STORE,
            "transactionId": f"tx-{payment_id}"}
    if kind in ("Transaction.Cancelled", "Transaction.PartialCancelled"):
        data["cancellationId"] = "c-1"
    body = json.dumps({"type": kind, "timestamp": NOW, "data": data}).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return body, {"webhook-id": msg_id, "webhook-timestamp": stamp,
                  "webhook-signature": "v1," + base64.b64encode(mac).decode(),
                  "content-type": "application/json"}


def stripe_refund_webhook(fakes: Fakes, refund_id: str, kind: str = "refund.updated"
                          ) -> tuple[bytes, dict[str, str]]:
    """``refund.updated`` (the refund) or ``charge.refunded`` (its charge), signed."""
    with fakes.lock:
        refund = dict(fakes.stripe_refunds[refund_id])
    if kind == "charge.refunded":
        return stripe_webhook(kind, {"id": refund["charge"], "object": "charge",
                                     "payment_intent": refund["payment_intent"],
                                     "refunded": True})
    return stripe_webhook(kind, refund)


def stripe_webhook(kind: str, intent: dict[str, Any], *, secret: str = STRIPE_WEBHOOK_SECRET,
                   timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A Stripe event with its ``Stripe-Signature``: ``t=<unix>,v1=<hex HMAC-SHA256 of
    "{t}.{body}">``."""
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event",
                       "type": kind, "api_version": "2025-01-01", "created": int(time.time()),
                       "livemode": False, "pending_webhooks": 1,
                       "data": {"object": intent}}).encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"stripe-signature": f"t={stamp},v1={mac}",
                  "content-type": "application/json"}
