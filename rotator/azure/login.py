"""Verify a new password by logging in to the registry the way `docker login` does.

`GET /v2/` -> 401 Bearer challenge -> `GET <realm>?service=...` with HTTP Basic -> access token
-> `GET /v2/` with the bearer token -> 200. A new password can take up to 60 s to replicate,
so 401s are retried until the verify timeout, cut short when the run's time bound (`rotator.azure.bounds`)
would leave no time to publish. Nothing here ever logs a password or a token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from rotator.azure.bounds import DEFAULT_BOUNDS, TimeBounds, time_left
from rotator.azure.errors import root_cause

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
REQUEST_TIMEOUT_SECONDS = 10
MIN_REQUEST_SECONDS = 5  # an attempt is up to 3 requests: 15 s at the end of the run, within the publish reserve


@dataclass(frozen=True)
class LoginOutcome:
    ok: bool
    attempts: int
    detail: str  # why the last attempt failed (status codes, never credentials)


class RegistryLogin:
    """Logs in to ACR login servers with token credentials."""

    def __init__(self, first_wait_seconds: float = 1.0, max_wait_seconds: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep, bounds: TimeBounds = DEFAULT_BOUNDS) -> None:
        self._first_wait = first_wait_seconds
        self._max_wait = max_wait_seconds
        self._sleep = sleep
        self._publish_reserve = bounds.call_seconds  # what a run keeps after verifying, to publish

    def verify(self, login_server: str, username: str, password: str, timeout_seconds: float) -> LoginOutcome:
        """Try at least once, and retry until it succeeds or `timeout_seconds` have passed.

        Within a run, retries stop earlier when the run's time bound would leave too little time to publish."""
        allowed = time_left(timeout_seconds + self._publish_reserve) - self._publish_reserve
        deadline = time.monotonic() + allowed
        wait, attempts = self._first_wait, 0
        with requests.Session() as session:
            while True:
                attempts += 1
                request_timeout = min(REQUEST_TIMEOUT_SECONDS, max(deadline - time.monotonic(), MIN_REQUEST_SECONDS))
                ok, detail = self._attempt(session, login_server, username, password, request_timeout)
                if ok:
                    return LoginOutcome(True, attempts, detail)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if allowed < timeout_seconds:
                        detail += (f"; stopped after {max(allowed, 0):.0f} s by the run's time bound "
                                   "(ROTATOR_RUN_TIMEOUT_SECONDS)")
                    return LoginOutcome(False, attempts, detail)
                self._sleep(min(wait, remaining))
                wait = min(wait * 2, self._max_wait)

    def _attempt(self, session: requests.Session, login_server: str, username: str, password: str,
                 timeout: float) -> tuple[bool, str]:
        base = f"https://{login_server}"
        try:
            challenge = session.get(f"{base}/v2/", timeout=timeout)
            if challenge.status_code != 401:
                return False, f"GET /v2/ without credentials answered {challenge.status_code}, expected 401"
            params = dict(_CHALLENGE_PARAM.findall(challenge.headers.get("Www-Authenticate", "")))
            if "realm" not in params:
                return False, "the registry's 401 carries no Bearer realm"
            issued = session.get(params["realm"], params={"service": params.get("service", login_server)},
                                 auth=(username, password), timeout=timeout)
            if issued.status_code != 200:
                return False, f"the token service answered {issued.status_code}"
            body = issued.json()
            bearer = body.get("access_token") or body.get("token") if isinstance(body, dict) else None
            if not bearer:
                return False, "the token service answered 200 without an access token"
            final = session.get(f"{base}/v2/", headers={"Authorization": f"Bearer {bearer}"}, timeout=timeout)
            if final.status_code != 200:
                return False, f"GET /v2/ with the bearer token answered {final.status_code}"
            return True, "logged in"
        except (requests.RequestException, ValueError) as error:
            return False, f"login server https://{login_server}: {root_cause(error)}"
