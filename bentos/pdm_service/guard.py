"""What happens to a request before BentoML parses it, and to a /predict 4xx after: one ASGI middleware.

Before: API keys (401), /metrics kept off the public port when it has its own (404), form bodies refused
(415: BentoML would fail on a malformed one with a 500), the body size bounded (413) by Content-Length,
or while a chunked body streams in, so that a huge request is never read whole, and the bytes of the requests
a worker holds at once bounded (429), since each is held parsed, about 9 times its size. After: every /predict 4xx is
one JSON object {"error": sentence, "reason": code, ...}; schema errors name the field and are counted by
reason. While the worker drains, every answer says `Connection: close`, so that clients reconnect elsewhere.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

from starlette.datastructures import Headers

from bentos.pdm_service.metrics import service_metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})  # probes answer without a key
FORM_MEDIA_TYPES = ("multipart/", "application/x-www-form-urlencoded")
# pydantic error type -> (status, reason). 400: not the schema's shape; 422: the shape, but a value no
# pipeline would accept; 413: more items than the limits.
SCHEMA_ERRORS: dict[str, tuple[int, str]] = {
    "json_invalid": (400, "malformed_json"),
    "missing": (400, "missing_field"),
    "extra_forbidden": (400, "unknown_field"),
    "greater_than_equal": (422, "out_of_range"),
    "less_than_equal": (422, "out_of_range"),
    "finite_number": (422, "not_finite"),
    "literal_error": (422, "unknown_code"),
    "value_error": (422, "invalid_value"),
    "too_short": (422, "batch_size"),
    "too_long": (413, "too_many_rows"),
}
# Rejections the API counts itself (errors.Rejected); any other 4xx is counted here.
COUNTED_BY_THE_API = frozenset({HTTPStatus.REQUEST_ENTITY_TOO_LARGE, HTTPStatus.UNPROCESSABLE_ENTITY})


class RequestGuard:
    def __init__(self, app: Any, *, predict_path: str, api_keys: list[str], max_request_bytes: int,
                 in_flight_bytes: int, metrics_elsewhere: bool, draining: Callable[[], bool]) -> None:
        self.app = app
        self.predict_path = predict_path
        self.api_keys = [key.encode() for key in api_keys]
        self.max_request_bytes = max_request_bytes
        self.in_flight_budget = in_flight_bytes
        self.in_flight = 0  # body bytes of the /predict requests this worker holds (one event loop: no lock)
        self.metrics_elsewhere = metrics_elsewhere
        self.draining = draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._closing_while_draining(send)
        path, headers = scope["path"], Headers(scope=scope)
        if self.metrics_elsewhere and path == "/metrics":
            await reject(send, 404, "not_found", "not found: metrics are served on the metrics port")
        elif self.api_keys and path not in OPEN_PATHS and not self._authorized(headers):
            await reject(send, 401, "unauthorized", "missing or unknown API key: send `Authorization: Bearer "
                         "<key>` with a key of PDM_API_KEYS", {"www-authenticate": "Bearer"})
        elif path != self.predict_path:
            await self.app(scope, receive, send)
        elif scope.get("method") != "POST":
            await self.app(scope, receive, uniform_rejections(send))
        else:
            await self._predict(scope, headers, receive, send)

    async def _predict(self, scope: Scope, headers: Headers, receive: Receive, send: Send) -> None:
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type.startswith(FORM_MEDIA_TYPES):
            await reject(send, 415, "http_415", f"Content-Type {media_type} is not allowed for {self.predict_path}: "
                         "send application/json")
            return
        declared = headers.get("content-length")
        size = int(declared) if declared is not None and declared.isdigit() else 0
        if size > self.max_request_bytes:
            await self._too_large(send, f"{size} bytes")
            return
        if declared is None:  # chunked: read it here, up to the limit, and hand it on whole
            body = await read_at_most(receive, self.max_request_bytes)
            if body is None:
                await self._too_large(send, "a chunked body")
                return
            receive, size = replay(body, receive), len(body)
        if self.in_flight and self.in_flight + size > self.in_flight_budget:
            await reject(send, 429, "busy", f"this worker holds {self.in_flight} bytes of requests; retry shortly",
                         {"retry-after": "1"})
            return
        self.in_flight += size
        try:
            await self.app(scope, receive, uniform_rejections(send))
        finally:
            self.in_flight -= size

    async def _too_large(self, send: Send, what: str) -> None:
        await reject(send, 413, "request_too_large",
                     f"request body of {what} is over the {self.max_request_bytes} bytes accepted "
                     "(PDM_MAX_REQUEST_BYTES); send fewer histories per request, or only the last 24 h of telemetry")

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        given = token.strip().encode()
        # Compared with every key, in constant time: the answer's timing tells nothing about the keys.
        matches = [hmac.compare_digest(given, key) for key in self.api_keys]
        return scheme.lower() == "bearer" and any(matches)

    def _closing_while_draining(self, send: Send) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and self.draining():
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        return sending


async def reject(send: Send, status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
    """Answer with the rejection body, counted by reason."""
    service_metrics().rejections.labels(reason=reason).inc()
    await respond(send, status, {"error": message, "reason": reason}, headers)


async def respond(send: Send, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it passes `limit` bytes (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` once, then what the connection says (a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receiving() -> Message:
        return pending.pop() if pending else await receive()

    return receiving


def uniform_rejections(send: Send) -> Send:
    """/predict 4xx answers as one JSON object with an `error` sentence (BentoML renders an exception as a
    one-element list, and a schema error as pydantic's error list under `detail`)."""
    held: dict[str, Any] = {}

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
            held.update(start=message, chunks=[])
            return
        if "start" not in held or message["type"] != "http.response.body":
            await send(message)
            return
        held["chunks"].append(message.get("body", b""))
        if message.get("more_body", False):
            return
        status, payload = uniform(held["start"]["status"], b"".join(held["chunks"]))
        kept = {k.decode(): v.decode() for k, v in held["start"].get("headers", [])
                if k.lower() not in (b"content-length", b"content-type")}
        await respond(send, status, payload, kept)

    return sending


def uniform(status: int, body: bytes) -> tuple[int, dict[str, Any]]:
    """(status, {"error": ..., "reason": ...}) for a 4xx body of /predict, counted unless the API counted it."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"error": body.decode("utf-8", "replace").strip() or f"HTTP {status}"}
    if isinstance(payload, list) and len(payload) == 1 and isinstance(payload[0], dict):
        payload = payload[0]
    if isinstance(payload, dict) and isinstance(payload.get("detail"), list) and payload["detail"]:
        errors = [{k: v for k, v in e.items() if k != "url"} for e in payload["detail"] if isinstance(e, dict)]
        status, reason = SCHEMA_ERRORS.get(str(errors[0].get("type")), (400, "invalid_request"))
        if reason == "too_many_rows" and list(errors[0].get("loc", ())) == ["histories"]:
            reason = "batch_size"
        service_metrics().rejections.labels(reason=reason).inc()
        return status, {"error": schema_message(errors), "reason": reason, "detail": errors}
    if not isinstance(payload, dict):
        payload = {"error": str(payload)}
    if status not in COUNTED_BY_THE_API:
        service_metrics().rejections.labels(reason=f"http_{status}").inc()
    return status, payload


def schema_message(errors: list[dict[str, Any]], shown: int = 5) -> str:
    """`histories[0].telemetry[3].volt: Input should be ...; ...` for the first few pydantic errors."""
    parts = []
    for error in errors[:shown]:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.get("loc", ())).lstrip(".")
        parts.append(f"{path or 'body'}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - shown} more)" if len(errors) > shown else ""
    return "; ".join(parts) + more
