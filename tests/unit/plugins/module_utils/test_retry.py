# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retry policy (plugins/module_utils/_registry/retry.py): Retry-After parsing, per-host backoff, what gets retried."""

from __future__ import annotations

import email.utils
import time
from types import SimpleNamespace
from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._errors import PermanentTransportError, TransportError
from ansible_collections.ocireg.registry.plugins.module_utils._registry import retry as _retry
from ansible_collections.ocireg.registry.plugins.module_utils._registry.retry import (
    MAX_SINGLE_WAIT,
    RetryPolicy,
    parse_retry_after,
    retry_transient,
)

NOW = 1_700_000_000.0  # a fixed "now" for HTTP-date arithmetic


# -- parse_retry_after ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("1", 1.0), ("120", 120.0), (" 7 ", 7.0)])
def test_retry_after_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


@pytest.mark.parametrize("offset", [0, 30, 3600])
def test_retry_after_http_date_in_the_future(offset: int) -> None:
    header = email.utils.formatdate(NOW + offset, usegmt=True)  # e.g. "Tue, 14 Nov 2023 22:13:20 GMT"
    assert parse_retry_after(header, now=NOW) == pytest.approx(offset)


def test_retry_after_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after(email.utils.formatdate(NOW - 600, usegmt=True), now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "-1", "1.5", "0x10", "Tue, 99 Foo 2023", "1e3"])
def test_retry_after_garbage_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value) is None


# -- RetryPolicy ----------------------------------------------------------------------------------------------


class Clock:
    """A fake monotonic clock for _retry (only there), whose sleep() just advances it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        monkeypatch.setattr(_retry, "time", SimpleNamespace(monotonic=lambda: self.now, time=time.time))

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_backoff_honours_retry_after_up_to_a_cap() -> None:
    backoff = RetryPolicy(5)
    assert backoff.delay(1, "0") == 0.0
    assert backoff.delay(3, "2") == 2.0  # the hint wins over the exponential delay
    assert backoff.delay(1, "86400") == MAX_SINGLE_WAIT
    assert backoff.delay(1, email.utils.formatdate(usegmt=True)) <= 1.0


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.25, 0.5), (2, 0.5, 1.0), (3, 1.0, 2.0), (4, 2.0, 4.0)])
def test_backoff_grows_exponentially_with_jitter(attempt: int, low: float, high: float) -> None:
    backoff = RetryPolicy(5)
    delays = [backoff.delay(attempt, None) for _attempt in range(200)]
    assert all(low <= delay <= high for delay in delays)
    assert len(set(delays)) > 100  # jittered, not lockstep


def test_backoff_is_capped_by_max_delay() -> None:
    backoff = RetryPolicy(20, base_delay=1.0, max_delay=3.0)
    assert all(1.5 <= backoff.delay(10, None) <= 3.0 for _attempt in range(50))


def test_backoff_garbage_retry_after_falls_back_to_exponential() -> None:
    assert all(0.25 <= RetryPolicy(5).delay(1, "whenever") <= 0.5 for _attempt in range(20))


def test_backoff_window_is_shared_by_every_request_to_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    sleeps: list[float] = []
    backoff = RetryPolicy(5, sleep=sleeps.append)  # sleeping does not move the clock: other threads still wait

    backoff.wait(1, "3")  # one request is told to come back in 3 s
    backoff.wait_turn()  # any other request to the host, meanwhile, waits for the same window
    clock.now += 1.0
    backoff.wait_turn()  # a second later, for what is left of it
    clock.now += 2.5
    backoff.wait_turn()  # and not at all once it has passed

    assert sleeps == [3.0, 3.0, 2.0] and backoff.retried == 1


def test_a_shorter_hint_does_not_shorten_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    sleeps: list[float] = []
    backoff = RetryPolicy(5, sleep=sleeps.append)
    backoff.wait(1, "5")
    backoff.wait(1, "0")
    assert sleeps == [5.0, 5.0] and clock.now == 1000.0


def test_negative_retries_mean_none() -> None:
    assert RetryPolicy(-3).retries == 0


# -- retry_transient ------------------------------------------------------------------------------------------


class Response:
    def __init__(self, status: int, retry_after: str | None = None) -> None:
        self.status_code = status
        self.headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeTransport:
    """Answers with OUTCOMES in order (a Response, or an exception to raise); records each attempt."""

    def __init__(self, outcomes: list[Any], retries: int, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock = Clock(monkeypatch)
        self.retry = RetryPolicy(retries, sleep=self.clock.sleep)
        self.outcomes = list(outcomes)
        self.attempts: list[tuple[str, Any]] = []

    @retry_transient
    def send(self, method: str, url: str, **kwargs: Any) -> Any:
        self.attempts.append((method, kwargs.get("data")))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "POST"])
def test_retryable_statuses_are_retried_for_replayable_requests(
    status: int, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = Response(status, "1")
    transport = FakeTransport([failed, Response(200)], 3, monkeypatch)

    assert transport.send(method, "http://r/v2/", data=b"body").status_code == 200

    assert len(transport.attempts) == 2 and failed.closed
    assert transport.clock.slept == [1.0]


@pytest.mark.parametrize("status", [400, 401, 404, 501])
def test_other_statuses_are_returned_at_once(status: int, monkeypatch: pytest.MonkeyPatch) -> None:
    transport = FakeTransport([Response(status)], 3, monkeypatch)
    assert transport.send("GET", "http://r/v2/").status_code == status
    assert len(transport.attempts) == 1 and transport.clock.slept == []


def test_a_500_is_retried_for_reads_only(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = FakeTransport([Response(500), Response(200)], 3, monkeypatch)
    assert transport.send("HEAD", "http://r/v2/a/manifests/prod").status_code == 200
    assert len(transport.attempts) == 2
    transport = FakeTransport([Response(500)], 3, monkeypatch)
    assert transport.send("PUT", "http://r/v2/a/manifests/prod", data=b"{}").status_code == 500
    assert len(transport.attempts) == 1 and transport.clock.slept == []


def test_patch_is_never_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = FakeTransport([Response(503, "0")], 3, monkeypatch)
    assert transport.send("PATCH", "http://r/upload", data=b"chunk").status_code == 503
    with pytest.raises(TransportError):
        FakeTransport([TransportError("cut")], 3, monkeypatch).send("PATCH", "http://r/upload", data=b"chunk")


def test_a_streamed_body_is_never_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    body = iter([b"a", b"b"])
    transport = FakeTransport([Response(503, "0")], 3, monkeypatch)
    assert transport.send("PUT", "http://r/upload", data=body).status_code == 503
    assert len(transport.attempts) == 1

    transport = FakeTransport([TransportError("cut")], 3, monkeypatch)
    with pytest.raises(TransportError, match="cut"):
        transport.send("PUT", "http://r/upload", data=iter([b"a"]))
    assert len(transport.attempts) == 1


def test_connection_errors_are_retried_then_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = FakeTransport([TransportError("refused")] * 3, 2, monkeypatch)
    with pytest.raises(TransportError, match="refused"):
        transport.send("GET", "http://r/v2/")
    assert len(transport.attempts) == 3  # the try and 2 retries
    assert len(transport.clock.slept) == 2 and 0.25 <= transport.clock.slept[0] <= 0.5


def test_permanent_transport_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = FakeTransport([PermanentTransportError("certificate verify failed")], 5, monkeypatch)
    with pytest.raises(PermanentTransportError):
        transport.send("GET", "https://r/v2/")
    assert len(transport.attempts) == 1 and transport.clock.slept == []
    assert issubclass(PermanentTransportError, TransportError)  # callers still catch it as a TransportError


def test_when_retries_run_out_the_last_answer_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    last = Response(503, "0")
    transport = FakeTransport([Response(503, "0"), Response(503, "0"), last], 2, monkeypatch)
    assert transport.send("GET", "http://r/v2/") is last
    assert len(transport.attempts) == 3 and not last.closed  # the caller reads its error body


def test_retries_0_tries_once(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = FakeTransport([Response(429, "1")], 0, monkeypatch)
    assert transport.send("GET", "http://r/v2/").status_code == 429
    assert len(transport.attempts) == 1 and transport.clock.slept == []


# ----------------------------------------------------------------------------------------------------
# RetryPolicy.run: the one loop that every retry in the client goes through


def test_run_tries_again_what_retry_if_accepts_then_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    policy = RetryPolicy(2, sleep=clock.sleep)
    calls: list[int] = []
    undone: list[int] = []

    def attempt() -> None:
        calls.append(len(calls))
        raise TransportError("cut %d" % len(calls))

    with pytest.raises(TransportError, match="cut 3"):
        policy.run(attempt, retry_if=lambda err: True, undo=lambda: undone.append(len(calls)))
    assert calls == [0, 1, 2] and undone == [1, 2, 3]  # every failed attempt is undone, the last one too
    assert policy.retried == 2 and len(clock.slept) == 2 and clock.slept[1] > clock.slept[0] / 2


def test_run_stops_at_once_on_an_error_retry_if_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = RetryPolicy(5, sleep=Clock(monkeypatch).sleep)
    outcomes = [TransportError("reset"), PermanentTransportError("certificate verify failed")]

    def attempt() -> None:
        raise outcomes.pop(0)

    with pytest.raises(PermanentTransportError):
        policy.run(attempt, retry_if=lambda err: not isinstance(err, PermanentTransportError))
    assert outcomes == [] and policy.retried == 1


def test_run_returns_the_first_success() -> None:
    policy = RetryPolicy(3, sleep=lambda seconds: None)
    outcomes: list[Any] = [TransportError("reset"), "done", "never"]

    def attempt() -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert policy.run(attempt, retry_if=lambda err: True) == "done" and outcomes == ["never"]


# -- what giving up says ----------------------------------------------------------------------------------------


def timing_out(clock: Clock, seconds: float, raised: list[TransportError]) -> Any:
    """An attempt that takes ``seconds`` on the clock and then times out, keeping what it raised."""

    def attempt() -> None:
        clock.now += seconds
        raised.append(TransportError("Timed out after %s seconds talking to registry r" % seconds, registry="r"))
        raise raised[-1]

    return attempt


def test_giving_up_says_how_many_retries_and_how_long_they_took_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    policy = RetryPolicy(5, sleep=clock.sleep)
    raised: list[TransportError] = []

    with pytest.raises(TransportError) as caught:
        policy.run(timing_out(clock, 2.0, raised), retry_if=lambda err: True)

    spent = 6 * 2.0 + sum(clock.slept)
    assert clock.now - 1000.0 == pytest.approx(spent)
    expected = "Timed out after 2.0 seconds talking to registry r (gave up after 5 retries over %.1f s)" % spent
    assert str(caught.value) == expected and caught.value.args == (expected,)
    # the same exception, its type and attributes as they were
    assert caught.value is raised[-1] and caught.value.__class__ is TransportError
    assert (caught.value.registry, caught.value.status, caught.value.codes) == ("r", None, [])


def test_one_retry_is_one_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    with pytest.raises(TransportError, match=r" \(gave up after 1 retry over \d+\.\d s\)$"):
        RetryPolicy(1, sleep=clock.sleep).run(timing_out(clock, 2.0, []), retry_if=lambda err: True)


def test_nothing_is_added_without_retrying_or_when_the_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    with pytest.raises(TransportError) as caught:  # retries 0: nothing was retried
        RetryPolicy(0, sleep=clock.sleep).run(timing_out(clock, 2.0, []), retry_if=lambda err: True)
    assert str(caught.value) == "Timed out after 2.0 seconds talking to registry r"

    outcomes = [TransportError("reset"), PermanentTransportError("certificate verify failed")]

    def attempt() -> None:
        raise outcomes.pop(0)

    with pytest.raises(PermanentTransportError) as refused:  # stopped by retry_if, not because retries ran out
        RetryPolicy(5, sleep=clock.sleep).run(
            attempt, retry_if=lambda err: not isinstance(err, PermanentTransportError)
        )
    assert str(refused.value) == "certificate verify failed"


def test_a_retried_whole_says_what_its_own_retries_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blob transfer started again whose requests were retried too: one note, the outer one, for all of it."""
    clock = Clock(monkeypatch)
    policy = RetryPolicy(2, sleep=clock.sleep)

    def transfer() -> None:
        policy.run(timing_out(clock, 1.0, []), retry_if=lambda err: True)

    with pytest.raises(TransportError) as caught:
        policy.run(transfer, retry_if=lambda err: True)

    message = str(caught.value)
    assert message.count("gave up after") == 1
    assert message == "Timed out after 1.0 seconds talking to registry r (gave up after 2 retries over %.1f s)" % (
        clock.now - 1000.0
    )


def test_a_request_that_keeps_failing_says_so_through_the_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = FakeTransport([TransportError("Cannot reach registry r: refused")] * 3, 2, monkeypatch)
    with pytest.raises(TransportError, match=r"^Cannot reach registry r: refused \(gave up after 2 retries over "):
        transport.send("GET", "http://r/v2/")
