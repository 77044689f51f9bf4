"""Concurrent requests scored in one call, without a timer: batches form only while the scorer is busy.

Scoring a history has a fixed cost (frames, the boosters' set-up) far above its per-history cost, so a
server that scores each request alone spends most of its time on overhead once requests overlap. The
caller that finds the scorer idle becomes the leader and scores everything queued; callers arriving
meanwhile wait and are scored together in the next call. At low load every batch is one request and
no latency is added. An adaptive batcher with a delay (BentoML's) cannot give each request its own
rejection: a bad history in a merged batch would fail every request in it; `merged_or_each` can.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Slot(Generic[T, R]):
    item: T
    size: int
    done: bool = False
    outcome: Any = None
    error: BaseException | None = field(default=None)


class CoalescingBatcher(Generic[T, R]):
    """Calls `process(items)` from one caller's thread at a time; items queued meanwhile go in the next call.

    `process` returns one outcome per item in order. `size(item)` weighs an item; a call takes queued items
    in arrival order while their total stays within `max_size` (always at least one). If `process` raises,
    every item of that call gets the exception.
    """

    def __init__(self, process: Callable[[list[T]], Sequence[R]], *, max_size: int,
                 size: Callable[[T], int] = lambda _: 1) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, not {max_size}")
        self._process = process
        self._max_size = max_size
        self._size = size
        self._queue: deque[_Slot[T, R]] = deque()
        self._leading = False
        self._changed = threading.Condition()
        self.calls = 0  # process() calls so far, for tests and metrics

    def pending(self) -> int:
        """Items waiting for the next call."""
        with self._changed:
            return len(self._queue)

    def __call__(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item, self._size(item))
        with self._changed:
            self._queue.append(slot)
        while True:
            with self._changed:
                while not slot.done and self._leading:
                    self._changed.wait()
                if slot.done:
                    return self._result(slot)
                self._leading = True
                batch = self._take()
            self._run(batch)

    def _take(self) -> list[_Slot[T, R]]:
        batch = [self._queue.popleft()]
        total = batch[0].size
        while self._queue and total + self._queue[0].size <= self._max_size:
            total += self._queue[0].size
            batch.append(self._queue.popleft())
        return batch

    def _run(self, batch: list[_Slot[T, R]]) -> None:
        outcomes: Sequence[Any]
        error: BaseException | None = None
        try:
            outcomes = self._process([slot.item for slot in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"process returned {len(outcomes)} outcomes for {len(batch)} items")
        except BaseException as raised:  # handed to every waiting caller, re-raised in each thread
            error, outcomes = raised, [None] * len(batch)
        with self._changed:
            self.calls += 1
            for slot, outcome in zip(batch, outcomes, strict=True):
                slot.outcome, slot.error, slot.done = outcome, error, True
            self._leading = False
            self._changed.notify_all()

    @staticmethod
    def _result(slot: _Slot[T, R]) -> R:
        if slot.error is not None:
            raise slot.error
        outcome: R = slot.outcome
        return outcome


E = TypeVar("E", bound=Exception)


def merged_or_each(
    process: Callable[[list[T]], list[R]], requests: Sequence[Sequence[T]], rejection: type[E]
) -> list[list[R] | E]:
    """`process` over all requests' items at once, split back per request; if that raises `rejection`, each
    request is processed on its own, so that only the requests at fault get one (with their own indices)."""
    merged = [item for request in requests for item in request]
    try:
        results = process(merged)
    except rejection as error:
        if len(requests) == 1:
            return [error]
        return [_alone(process, request, rejection) for request in requests]
    out: list[list[R] | E] = []
    start = 0
    for request in requests:
        out.append(results[start : start + len(request)])
        start += len(request)
    return out


def _alone(process: Callable[[list[T]], list[R]], request: Sequence[T], rejection: type[E]) -> list[R] | E:
    try:
        return process(list(request))
    except rejection as error:
        return error
