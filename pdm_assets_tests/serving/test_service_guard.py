"""The service's ASGI guard on its own, with a stand-in app: the bytes a worker holds at once are bounded."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bentos.pdm_service.guard import RequestGuard


class HeldApp:
    """Answers 200 once `release` is set, after reading the whole body: a request the worker is holding."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.bodies: list[int] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(len(body))
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})


async def call(guard: RequestGuard, size: int) -> tuple[int, dict[str, Any] | None]:
    scope = {"type": "http", "method": "POST", "path": "/predict",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(size).encode())]}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b" " * size, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await guard(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body) if sent[0]["status"] != 200 else None


def guard_for(app: HeldApp) -> RequestGuard:
    return RequestGuard(app, predict_path="/predict", api_keys=[], max_request_bytes=1500, in_flight_bytes=1000,
                        metrics_elsewhere=False, draining=lambda: False)


def test_a_worker_holds_at_most_its_byte_budget_of_requests_and_says_retry() -> None:
    async def overlapping() -> None:
        app = HeldApp()
        guard = guard_for(app)
        held = [asyncio.create_task(call(guard, 600)), asyncio.create_task(call(guard, 300))]
        while len(app.bodies) < 2:
            await asyncio.sleep(0.001)
        status, answer = await call(guard, 200)  # 600 + 300 + 200 > 1000
        assert status == 429 and answer is not None
        assert answer["reason"] == "busy" and answer["error"].startswith("this worker holds 900 bytes")
        app.release.set()
        assert [await task for task in held] == [(200, None), (200, None)]
        assert guard.in_flight == 0
        assert await call(guard, 200) == (200, None)  # admitted again once the others are answered

    async def alone() -> None:
        app = HeldApp()
        app.release.set()
        # larger than the budget, within the size limit: admitted when the worker holds nothing else
        assert await call(guard_for(app), 1400) == (200, None)

    asyncio.run(overlapping())
    asyncio.run(alone())
