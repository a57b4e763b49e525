# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retry policy for registry requests: which failures are retried, and how long to wait.

The policy is applied in exactly one place, the :func:`retry_transient` decorator around the
transport's single-request method. Backoff state is kept per registry host and shared by every
request (and thread) talking to it, so one 429 slows the whole client down, not one request.
"""

from __future__ import annotations

import email.utils
import functools
import random
import threading
import time
from typing import Any, Callable

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


class HostBackoff:
    """Backoff shared by all requests to one registry host."""

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


def _is_replayable(kwargs: dict[str, Any]) -> bool:
    body = kwargs.get("data")
    return body is None or isinstance(body, (bytes, str))


def retry_transient(func: Callable[..., Any]) -> Callable[..., Any]:
    """Retry ``func(self, method, url, **kwargs)`` on connection errors and retryable statuses.

    ``self.backoff`` is the host's :class:`HostBackoff`. Streaming (non-replayable) bodies are
    never retried here: their caller restarts the whole operation instead.
    """

    @functools.wraps(func)
    def wrapper(self: Any, method: str, url: str, **kwargs: Any) -> Any:
        backoff: HostBackoff = self.backoff
        retryable = method.upper() in IDEMPOTENT_METHODS and _is_replayable(kwargs)
        retry_statuses = RETRYABLE_READ_STATUSES if method.upper() in READ_METHODS else RETRYABLE_STATUSES
        attempt = 0
        while True:
            backoff.wait_turn()
            attempt += 1
            try:
                response = func(self, method, url, **kwargs)
            except PermanentTransportError:
                raise
            except TransportError:
                if not retryable or attempt > backoff.retries:
                    raise
                backoff.wait(attempt, None)
                continue
            if response.status_code in retry_statuses and retryable and attempt <= backoff.retries:
                retry_after = response.headers.get("Retry-After")
                response.close()
                backoff.wait(attempt, retry_after)
                continue
            return response

    return wrapper


TRANSIENT_STATUSES = frozenset((408, 429, 500, 502, 503, 504))


def is_transient(err: RegistryError, source_verified: bool = False) -> bool:
    """Worth starting a blob transfer again from scratch (a fresh download and a fresh upload session)."""
    if isinstance(err, DigestMismatchError):
        # The source bytes verified, yet the registry saw others: they were mangled on the way.
        return source_verified
    if isinstance(err, PermanentTransportError):
        return False
    if isinstance(err, (TransportError, TooManyRequestsError)):
        return True
    return err.status in TRANSIENT_STATUSES or "BLOB_UPLOAD_UNKNOWN" in err.codes
