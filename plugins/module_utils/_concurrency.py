# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one thread-pool helper, :func:`run_all`: work on a bounded pool, results in order, the first failure raised.

Also :class:`OnceCache`, a memo that computes each key once however many threads ask for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class OnceCache:
    """A thread-safe memo where each key is computed once, even when several threads ask at the same time."""

    def __init__(self) -> None:
        self._futures: dict[Any, Future] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, compute: Callable[[], T]) -> T:
        with self._lock:
            future = self._futures.get(key)
            owner = future is None
            if owner:
                future = self._futures[key] = Future()
        if owner:
            try:
                future.set_result(compute())
            except BaseException as err:  # noqa: BLE001 - handed to every waiter, then raised again by result()
                future.set_exception(err)
                with self._lock:
                    del self._futures[key]  # a failure is not remembered: the next caller tries again
        return future.result()

    def __len__(self) -> int:
        return len(self._futures)


def map_concurrently(function: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[function(item) for item in items]`` on a pool of its own of up to ``workers`` threads; see :func:`run_all`."""
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return run_all(function, items, pool)


def run_all(function: Callable[[T], R], items: Sequence[T], pool: ThreadPoolExecutor | None) -> list[R]:
    """``[function(item) for item in items]`` on ``pool`` (None: here, one at a time), results in input order.

    On the first failure, work not started yet is cancelled and work already running is waited for, so that
    nothing goes on in the background while the caller cleans up; then the first failure in input order is raised.
    """
    if pool is None or len(items) < 2:
        return [function(item) for item in items]
    futures: list[Future] = [pool.submit(function, item) for item in items]
    _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    if any(future.exception() for future in futures if future.done()):
        for future in pending:
            future.cancel()
        wait(pending)
        failures = [future.exception() for future in futures if not future.cancelled() and future.exception()]
        raise failures[0]  # type: ignore[misc]
    return [future.result() for future in futures]
