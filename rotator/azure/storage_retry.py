"""The Storage SDK's exponential retry within the call and run bounds (`rotator.azure.bounds`).

Storage has its own retry policy kind (it retries 5xx and 408, never 409 or 412, and ignores Retry-After);
its defaults back off 15 s and more between tries. Kept apart so that only code using Storage imports its SDK.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import AzureError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.storage.blob import ExponentialRetry

from rotator.azure.bounds import RETRIES, CallClock

FIRST_BACKOFF_SECONDS = 1  # waits about 3, 5, 9 s between tries (± 1 s of jitter)
JITTER_SECONDS = 1


class BoundedStorageRetry(ExponentialRetry):
    """Bounded by a CallClock; a connection failure that outlives the retries names Storage and its cause."""

    def __init__(self, clock: CallClock) -> None:
        super().__init__(initial_backoff=FIRST_BACKOFF_SECONDS, increment_base=2, retry_total=RETRIES,
                         random_jitter_range=JITTER_SECONDS)
        self._clock = clock

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        try:
            response: PipelineResponse[Any, Any] = super().send(request)  # type: ignore[no-untyped-call]
        except (ServiceRequestError, ServiceResponseError) as error:
            raise self._clock.no_answer(str(request.http_request.url), error) from error
        return response

    def configure_retries(self, request: PipelineRequest[Any]) -> dict[str, Any]:
        end = self._clock.start(str(request.http_request.url), request.context.options)
        settings: dict[str, Any] = super().configure_retries(request)
        settings.update(call_end=end, options=request.context.options)
        return settings

    def increment(self, settings: dict[str, Any], request: Any, response: Any = None,
                  error: AzureError | None = None) -> bool:
        """Retry only when the backoff (at its longest) still leaves the next try time to end within the call."""
        if not super().increment(settings, request, response=response, error=error):
            return False
        longest_wait = float(self.get_backoff_time(settings)) + self.random_jitter_range
        if not self._clock.may_wait(longest_wait, settings["call_end"], asked=False):
            return False
        self._clock.fit_try(settings["options"], settings["call_end"], longest_wait)
        return True
