"""Time bounds on every Azure call and on every run (README: Time bounds).

Left alone, azure-core retries up to 10 times and sleeps as long as any `Retry-After` asks, its transport
waits 300 s for a connection or an answer, and the Storage SDK backs off 15 s and more between tries: a
throttled or unreachable service could hold one rotation for many minutes, far past the 230 s within which an
HTTP reply must start. So every SDK client gets a bounded retry policy from here:

- **one call** (all its tries and the waits between them) ends within `call_seconds`: no try or wait starts
  that would end later, and each try's connect and read timeouts are cut to what is left;
- a **Retry-After** longer than `max_retry_after_seconds` is not waited for: the call fails at once as
  throttled (transient: the caller retries later, HTTP answers 503);
- **one run** (a token's rotation, an HTTP request) is a `deadline(...)` around the work: every call inside
  it gets at most what is left of it, and none starts once it is used up.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core.exceptions import AzureError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import RetryPolicy

from rotator.azure.errors import (
    RETRYABLE_STATUSES,
    CallFailed,
    name_endpoint,
    retry_after_seconds,
    root_cause,
    where,
)

if TYPE_CHECKING:
    from azure.core.polling import LROPoller

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 10.0  # a TCP + TLS handshake to an Azure endpoint takes well under a second
RETRIES = 3  # tries after the first, within the call bound
BACKOFF_FACTOR_SECONDS = 0.8  # azure-core: waits 0, 1.6, 3.2 s between tries without Retry-After
_CALL_END = "rotator_call_end"
_deadline: ContextVar[float | None] = ContextVar("rotator_deadline", default=None)


@dataclass(frozen=True)
class TimeBounds:
    """The bounds from settings (ROTATOR_CALL_TIMEOUT_SECONDS, ..._MAX_RETRY_AFTER_SECONDS, ..._RUN_TIMEOUT_SECONDS)."""

    call_seconds: float = 30.0
    max_retry_after_seconds: float = 10.0
    run_seconds: float = 180.0

    def client_options(self, service: str) -> dict[str, Any]:
        """Keyword arguments for an azure-core based client (ARM, Key Vault)."""
        return {"retry_policy": BoundedRetryPolicy(self, service), **self._timeouts()}

    def storage_options(self, service: str) -> dict[str, Any]:
        """Keyword arguments for an azure-storage client (its retry policy is its own kind)."""
        from rotator.azure.storage_retry import BoundedStorageRetry  # imports the Storage SDK: only when used

        return {"retry_policy": BoundedStorageRetry(CallClock(self, service)), **self._timeouts()}

    def _timeouts(self) -> dict[str, Any]:
        return {"connection_timeout": min(CONNECT_TIMEOUT_SECONDS, self.call_seconds),
                "read_timeout": self.call_seconds}


DEFAULT_BOUNDS = TimeBounds()  # the settings' defaults


# -- run deadlines ----------------------------------------------------------------------------------


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Inside, Azure calls (of this thread) end within `seconds` from now, or by an enclosing deadline if sooner."""
    end = time.monotonic() + seconds
    current = _deadline.get()
    token = _deadline.set(end if current is None else min(current, end))
    try:
        yield
    finally:
        _deadline.reset(token)


@contextlib.contextmanager
def reserve(seconds: float) -> Iterator[None]:
    """Inside, the current deadline comes `seconds` earlier: time kept for what follows (e.g. a lease release)."""
    current = _deadline.get()
    token = _deadline.set(None if current is None else current - seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left(default: float) -> float:
    """Seconds left before the current deadline (at most `default`; `default` outside any run)."""
    current = _deadline.get()
    return default if current is None else min(default, current - time.monotonic())


def finish(poller: LROPoller[T], what: str, limit: float) -> T:
    """Wait for a long-running ARM operation within the run's time (pollers sleep as long as ARM asks)."""
    result = poller.result(timeout=max(time_left(limit), 0.0))
    if not poller.done():
        raise CallFailed(f"{what} did not finish within the run's time bound; the next run retries", "Timeout")
    return result


# -- retry policies ---------------------------------------------------------------------------------


class CallClock:
    """What both retry policies share: one call's end, waits that fit before it, tries cut to fit."""

    def __init__(self, bounds: TimeBounds, service: str) -> None:
        self.bounds = bounds
        self.service = service

    def start(self, url: str, options: dict[str, Any]) -> float:
        """The call's end (monotonic); refuses to start a call once the run's time is used up."""
        name_endpoint(url, self.service)
        left = time_left(self.bounds.call_seconds)
        if left <= 0:
            raise CallFailed(f"{where(url)}: not called, the run's time bound (ROTATOR_RUN_TIMEOUT_SECONDS) "
                             "is used up", "Timeout")
        end = time.monotonic() + left
        self.fit_try(options, end)
        return end

    @staticmethod
    def fit_try(options: dict[str, Any], end: float, wait: float = 0.0) -> None:
        """Cut the next try's connect and read timeouts so that it ends by `end` (after waiting `wait`)."""
        left = max(end - time.monotonic() - wait, 0.1)
        options["connection_timeout"] = min(CONNECT_TIMEOUT_SECONDS, left)
        options["read_timeout"] = left

    def may_wait(self, wait: float, end: float, asked: bool) -> bool:
        """A wait is allowed when the next try still fits, and a server-asked wait is not above the bound."""
        too_long = asked and wait > self.bounds.max_retry_after_seconds
        return not too_long and time.monotonic() + wait < end

    def check_answer(self, response: PipelineResponse[Any, Any]) -> None:
        """A throttled answer asking for a longer wait than we allow fails now, and says so."""
        status = response.http_response.status_code
        wait = retry_after_seconds(response.http_response.headers)
        if status in RETRYABLE_STATUSES and wait is not None and wait > self.bounds.max_retry_after_seconds:
            raise CallFailed(
                f"{where(str(response.http_request.url))} throttled the call ({status}, Retry-After {wait:g} s); "
                f"not waited for: longer than the {self.bounds.max_retry_after_seconds:g} s the rotator waits "
                "(ROTATOR_MAX_RETRY_AFTER_SECONDS); retry later", "Throttled")

    @staticmethod
    def no_answer(url: str, error: AzureError) -> CallFailed:
        """A connection failure that outlived the retries, named by service, endpoint and root cause."""
        cause = root_cause(error)
        return CallFailed(f"{where(url)}: {cause}", "Timeout" if cause == "timed out" else "ConnectionFailed")


class BoundedRetryPolicy(RetryPolicy[Any, Any]):
    """azure-core's retry (same retryable statuses and methods), within the call and run bounds."""

    def __init__(self, bounds: TimeBounds, service: str) -> None:
        super().__init__(retry_total=RETRIES, retry_backoff_factor=BACKOFF_FACTOR_SECONDS,
                         retry_backoff_max=bounds.max_retry_after_seconds, timeout=bounds.call_seconds)
        self._clock = CallClock(bounds, service)

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        url = str(request.http_request.url)
        options = request.context.options
        end = self._clock.start(url, options)
        options["timeout"] = end - time.monotonic()  # azure-core's own bound: no try starts after it
        options[_CALL_END] = end
        try:
            response = super().send(request)
        except (ServiceRequestError, ServiceResponseError) as error:
            raise self._clock.no_answer(url, error) from error
        self._clock.check_answer(response)
        return response

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings = super().configure_retries(options)
        settings.update(call_end=options.pop(_CALL_END), options=options)
        return settings

    def increment(self, settings: dict[str, Any], response: Any = None, error: Exception | None = None) -> bool:
        """Retry only when the wait before the next try is allowed and the try can still end in time."""
        if not super().increment(settings, response=response, error=error):
            return False
        asked = self.get_retry_after(response) if error is None and isinstance(response, PipelineResponse) else None
        wait = asked if asked is not None else self.get_backoff_time(settings)
        if not self._clock.may_wait(wait, settings["call_end"], asked=asked is not None):
            return False
        self._clock.fit_try(settings["options"], settings["call_end"], wait)
        return True
