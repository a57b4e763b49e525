# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one retry and backoff policy: which failures are worth another try, and how long to wait first.

Everything that retries goes through :meth:`RetryPolicy.run`: a single request (the transport), a blob transfer
started again from scratch (the copy engine and the local stores), and a download re-read because it broke off or
arrived corrupt (the API client). One policy object per registry host is shared by every request and thread
talking to it, so one 429 slows the whole client down, not one request, and ``retries`` means the same everywhere.
"""

from __future__ import annotations

import email.utils
import functools
import random
import re
import threading
import time
from typing import Any, Callable, TypeVar

from ansible_collections.ocireg.registry.plugins.module_utils._errors import (
    DigestMismatchError,
    PermanentTransportError,
    RegistryError,
    TooManyRequestsError,
    TransportError,
)

# 408 and 429 ask us to come back; 502/503/504 are proxies and overloaded backends.
RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504})

# A 500 to a write is usually a deterministic registry bug, and retrying it only hides the message for
# longer. A 500 to a read is retried: distribution answers one when it reads a tag that another client is
# writing at that moment (its filesystem tag store is not atomic for readers).
RETRYABLE_READ_STATUSES = RETRYABLE_STATUSES | {500}
READ_METHODS = frozenset({"GET", "HEAD"})

# Requests that can be replayed without changing the outcome. POST only starts an upload session:
# a second one abandons the first, which registries garbage-collect.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "POST"})
MAX_SINGLE_WAIT = 60.0

T = TypeVar("T")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class RetryPolicy:
    """``retries`` more attempts after a failure worth retrying, with exponential backoff shared by a host."""

    def __init__(
        self,
        retries: int,
        *,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.retries = max(0, int(retries))
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._lock = threading.Lock()
        self._not_before = 0.0
        self.retried = 0

    def run(
        self,
        attempt: Callable[[], T],
        *,
        retry_if: Callable[[RegistryError], bool],
        undo: Callable[[], None] | None = None,
        retry_answer: Callable[[T], str | None] | None = None,
    ) -> T:
        """``attempt()``, again after each failure that ``retry_if`` accepts, until it succeeds or retries run out.

        ``undo`` throws away what a failed attempt left behind (a half-written file) before the next one.
        When retries run out, the last error's message says how many were made and how long they took in all: its
        own words ("Timed out after 2.0 seconds") speak of the last attempt only.
        ``retry_answer`` is for attempts that answer rather than raise (an HTTP response): it returns None for a
        final answer, or the ``Retry-After`` value ("" for none) of one to try again, having closed it.
        """
        started = time.monotonic()
        failures = 0
        while True:
            self.wait_turn()
            try:
                result = attempt()
            except RegistryError as err:
                if undo is not None:
                    undo()
                if not retry_if(err):
                    raise
                if failures >= self.retries:
                    if failures:
                        _say_retries_ran_out(err, failures, time.monotonic() - started)
                    raise
                failures += 1
                self.wait(failures, None)
                continue
            hint = retry_answer(result) if retry_answer is not None and failures < self.retries else None
            if hint is None:
                return result
            failures += 1
            self.wait(failures, hint)

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """How long to wait before retry number ``attempt`` (1-based)."""
        hinted = parse_retry_after(retry_after)
        if hinted is not None:
            return min(hinted, MAX_SINGLE_WAIT)
        exponential = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        # Full jitter keeps parallel workers from retrying in lockstep.
        return random.uniform(exponential / 2, exponential)  # noqa: S311 - jitter, not crypto

    def wait(self, attempt: int, retry_after: str | None) -> None:
        pause = self.delay(attempt, retry_after)
        with self._lock:
            self.retried += 1
            self._not_before = max(self._not_before, time.monotonic() + pause)
        self.wait_turn()

    def wait_turn(self) -> None:
        """Block until the host's shared backoff window has passed."""
        with self._lock:
            remaining = self._not_before - time.monotonic()
        if remaining > 0:
            self._sleep(remaining)


# What _say_retries_ran_out adds. A retried whole (a blob transfer started again) may end with an error that a
# retried request inside it already marked: the outer mark, whose count and time span everything, replaces it.
_RETRIES_RAN_OUT = re.compile(r" \(gave up after \d+ retr(?:y|ies) over [0-9.]+ s\)$")


def _say_retries_ran_out(err: RegistryError, retries: int, seconds: float) -> None:
    """Add to ``err``'s message (the same exception, its type and other attributes unchanged) what retrying cost."""
    note = " (gave up after %d %s over %.1f s)" % (retries, "retry" if retries == 1 else "retries", seconds)
    err.message = _RETRIES_RAN_OUT.sub("", err.message) + note
    err.args = (err.message,) + tuple(err.args[1:])


def _is_replayable(kwargs: dict[str, Any]) -> bool:
    body = kwargs.get("data")
    return body is None or isinstance(body, (bytes, str))


def _is_retryable_request_error(err: RegistryError) -> bool:
    return isinstance(err, TransportError) and not isinstance(err, PermanentTransportError)


def retry_transient(func: Callable[..., Any]) -> Callable[..., Any]:
    """Retry ``func(self, method, url, **kwargs)`` on connection errors and retryable statuses, with ``self.retry``.

    Only idempotent requests with a body that can be sent again are retried: a streamed body is not, and its
    caller restarts the whole operation instead.
    """

    @functools.wraps(func)
    def wrapper(self: Any, method: str, url: str, **kwargs: Any) -> Any:
        policy: RetryPolicy = self.retry
        retry_statuses = RETRYABLE_READ_STATUSES if method.upper() in READ_METHODS else RETRYABLE_STATUSES

        def retry_answer(response: Any) -> str | None:
            if response.status_code not in retry_statuses:
                return None
            retry_after = response.headers.get("Retry-After") or ""
            response.close()
            return retry_after

        def attempt() -> Any:
            return func(self, method, url, **kwargs)

        if method.upper() not in IDEMPOTENT_METHODS or not _is_replayable(kwargs):
            policy.wait_turn()
            return attempt()
        return policy.run(attempt, retry_if=_is_retryable_request_error, retry_answer=retry_answer)

    return wrapper


def is_transient(err: RegistryError, source_verified: bool = False) -> bool:
    """Worth starting a blob transfer again from scratch (a fresh download and a fresh upload session)."""
    if isinstance(err, DigestMismatchError):
        # The source bytes verified, yet the registry saw others: they were mangled on the way.
        return source_verified
    if isinstance(err, PermanentTransportError):
        return False
    if isinstance(err, (TransportError, TooManyRequestsError)):
        return True
    return err.status in RETRYABLE_READ_STATUSES or "BLOB_UPLOAD_UNKNOWN" in err.codes
