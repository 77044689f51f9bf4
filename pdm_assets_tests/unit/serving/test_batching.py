"""Overlapping calls scored together, each caller getting its own outcome or its own rejection."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pdm_assets.lib.serving.batching import CoalescingBatcher, merged_or_each

WAIT_S = 10.0


def wait_until(condition: object, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.001)


class Recorder:
    """process(): squares the items and records each call's items; the first call holds until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.entered.set()
        if not self.batches:
            self.release.wait(WAIT_S)
        self.batches.append(list(items))
        return [x * x for x in items]


def test_one_caller_is_processed_alone_with_no_delay() -> None:
    recorder = Recorder()
    recorder.release.set()
    batcher = CoalescingBatcher(recorder, max_size=10)
    assert batcher(7) == 49
    assert recorder.batches == [[7]] and batcher.calls == 1


def test_callers_arriving_while_one_is_processed_go_together_in_the_next_call() -> None:
    recorder = Recorder()
    batcher = CoalescingBatcher(recorder, max_size=100)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(batcher, 1)
        assert recorder.entered.wait(WAIT_S)  # the first call is inside process(), held
        others = {x: pool.submit(batcher, x) for x in (2, 3, 4, 5, 6)}
        wait_until(lambda: batcher.pending() == 5)
        recorder.release.set()
        assert first.result(WAIT_S) == 1
        assert {x: f.result(WAIT_S) for x, f in others.items()} == {x: x * x for x in others}
    assert recorder.batches[0] == [1]
    assert sorted(recorder.batches[1]) == [2, 3, 4, 5, 6] and len(recorder.batches) == 2


def test_a_call_takes_queued_items_up_to_max_size_in_arrival_order() -> None:
    recorder = Recorder()
    batcher: CoalescingBatcher[list[int], list[int]] = CoalescingBatcher(
        lambda items: [recorder(item) for item in items], max_size=5, size=len
    )
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(batcher, [0])
        assert recorder.entered.wait(WAIT_S)
        later = []
        for item in ([1, 1, 1], [2, 2], [3, 3, 3]):  # 3 + 2 fit in five, the last one waits
            later.append(pool.submit(batcher, item))
            queued = len(later)
            wait_until(lambda: batcher.pending() == queued)  # noqa: B023 (called before the next iteration)
        recorder.release.set()
        assert first.result(WAIT_S) == [0]
        assert [f.result(WAIT_S) for f in later] == [[1, 1, 1], [4, 4], [9, 9, 9]]
    assert recorder.batches == [[0], [1, 1, 1], [2, 2], [3, 3, 3]]
    assert batcher.calls == 3


def test_an_item_larger_than_max_size_is_still_processed_alone() -> None:
    batcher: CoalescingBatcher[list[int], int] = CoalescingBatcher(lambda items: [len(i) for i in items],
                                                                   max_size=2, size=len)
    assert batcher([1, 2, 3]) == 3


def test_an_exception_reaches_every_caller_of_that_call_and_the_batcher_keeps_working() -> None:
    def explode(items: list[int]) -> list[int]:
        if 13 in items:
            raise ArithmeticError("unlucky")
        return items

    batcher = CoalescingBatcher(explode, max_size=10)
    with pytest.raises(ArithmeticError, match="unlucky"):
        batcher(13)
    assert batcher(2) == 2


def test_a_process_returning_the_wrong_number_of_outcomes_is_an_error() -> None:
    batcher = CoalescingBatcher(lambda items: [], max_size=10)
    with pytest.raises(RuntimeError, match="returned 0 outcomes for 1 items"):
        batcher(1)


def test_max_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_size must be at least 1"):
        CoalescingBatcher(lambda items: items, max_size=0)


class Rejected(ValueError):
    pass


def negate_positive(items: list[int]) -> list[int]:
    """Rejects a batch holding a negative number, naming its index in the batch."""
    for i, x in enumerate(items):
        if x < 0:
            raise Rejected(f"items[{i}] is negative")
    return [-x for x in items]


def test_merged_requests_are_processed_once_and_split_back() -> None:
    calls: list[list[int]] = []

    def process(items: list[int]) -> list[int]:
        calls.append(items)
        return negate_positive(items)

    assert merged_or_each(process, [[1, 2], [3], [4, 5, 6]], Rejected) == [[-1, -2], [-3], [-4, -5, -6]]
    assert calls == [[1, 2, 3, 4, 5, 6]]


def test_a_rejection_goes_only_to_the_request_at_fault_with_its_own_index() -> None:
    outcomes = merged_or_each(negate_positive, [[1, 2], [3, -4], [5]], Rejected)
    assert outcomes[0] == [-1, -2] and outcomes[2] == [-5]
    assert isinstance(outcomes[1], Rejected) and str(outcomes[1]) == "items[1] is negative"
    single = merged_or_each(negate_positive, [[-1]], Rejected)
    assert isinstance(single[0], Rejected)


def test_other_exceptions_are_not_taken_for_rejections() -> None:
    def broken(items: list[int]) -> list[int]:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        merged_or_each(broken, [[1], [2]], Rejected)
