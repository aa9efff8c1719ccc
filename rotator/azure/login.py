"""Verify a new password by logging in to the registry the way `docker login` does.

`GET /v2/` -> 401 Bearer challenge -> `GET <realm>?service=...` with HTTP Basic -> access token
-> `GET /v2/` with the bearer token -> 200. A new password can take up to 60 s to replicate, so the
token service is asked again every POLL_SECONDS (counted from the start of the previous attempt) until
the verify timeout: a password that starts working D seconds after it was made is seen by D + 1 s
(plus one round trip), not at the next step of a growing backoff. The challenge does not change, so it
is fetched once per verification, and one connection is kept: an attempt is one request until the
password works. Retries stop early when the run's time bound (`rotator.azure.bounds`) would leave no
time to publish. One thread per verification, the caller's: it sleeps between attempts.
Nothing here ever logs a password or a token.
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
POLL_SECONDS = 1.0  # from one attempt's start to the next: a working password is seen within about a second


@dataclass(frozen=True)
class LoginOutcome:
    ok: bool
    attempts: int
    detail: str  # why the last attempt failed (status codes, never credentials)


@dataclass(frozen=True)
class _Challenge:
    realm: str
    service: str


class RegistryLogin:
    """Logs in to ACR login servers with token credentials."""

    def __init__(self, first_wait_seconds: float = POLL_SECONDS, max_wait_seconds: float = POLL_SECONDS,
                 sleep: Callable[[float], None] = time.sleep, bounds: TimeBounds = DEFAULT_BOUNDS) -> None:
        self._first_wait = first_wait_seconds
        self._max_wait = max(max_wait_seconds, first_wait_seconds)
        self._sleep = sleep
        self._publish_reserve = bounds.call_seconds  # what a run keeps after verifying, to publish

    def verify(self, login_server: str, username: str, password: str, timeout_seconds: float) -> LoginOutcome:
        """Try at least once, and retry until it succeeds or `timeout_seconds` have passed.

        Within a run, retries stop earlier when the run's time bound would leave too little time to publish."""
        allowed = time_left(timeout_seconds + self._publish_reserve) - self._publish_reserve
        deadline = time.monotonic() + allowed
        wait, attempts = self._first_wait, 0
        challenge: _Challenge | None = None
        with requests.Session() as session:
            while True:
                attempts += 1
                started = time.monotonic()
                request_timeout = min(REQUEST_TIMEOUT_SECONDS, max(deadline - started, MIN_REQUEST_SECONDS))
                try:
                    challenge = challenge or self._challenge(session, login_server, request_timeout)
                    ok, detail = self._attempt(session, login_server, challenge, username, password, request_timeout)
                except _NoChallenge as problem:
                    ok, detail = False, str(problem)
                except (requests.RequestException, ValueError) as error:
                    ok, detail = False, f"login server https://{login_server}: {root_cause(error)}"
                if ok:
                    return LoginOutcome(True, attempts, detail)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if allowed < timeout_seconds:
                        detail += (f"; stopped after {max(allowed, 0):.0f} s by the run's time bound "
                                   "(ROTATOR_RUN_TIMEOUT_SECONDS)")
                    return LoginOutcome(False, attempts, detail)
                self._sleep(max(0.0, min(started + wait - time.monotonic(), remaining)))
                wait = min(wait * 2, self._max_wait)

    @staticmethod
    def _challenge(session: requests.Session, login_server: str, timeout: float) -> _Challenge:
        """The Bearer realm and service the registry's anonymous `GET /v2/` names."""
        answer = session.get(f"https://{login_server}/v2/", timeout=timeout)
        if answer.status_code != 401:
            raise _NoChallenge(f"GET /v2/ without credentials answered {answer.status_code}, expected 401")
        params = dict(_CHALLENGE_PARAM.findall(answer.headers.get("Www-Authenticate", "")))
        if "realm" not in params:
            raise _NoChallenge("the registry's 401 carries no Bearer realm")
        return _Challenge(params["realm"], params.get("service", login_server))

    @staticmethod
    def _attempt(session: requests.Session, login_server: str, challenge: _Challenge, username: str, password: str,
                 timeout: float) -> tuple[bool, str]:
        issued = session.get(challenge.realm, params={"service": challenge.service}, auth=(username, password),
                             timeout=timeout)
        if issued.status_code != 200:
            return False, f"the token service answered {issued.status_code}"
        body = issued.json()
        bearer = body.get("access_token") or body.get("token") if isinstance(body, dict) else None
        if not bearer:
            return False, "the token service answered 200 without an access token"
        final = session.get(f"https://{login_server}/v2/", headers={"Authorization": f"Bearer {bearer}"},
                            timeout=timeout)
        if final.status_code != 200:
            return False, f"GET /v2/ with the bearer token answered {final.status_code}"
        return True, "logged in"


class _NoChallenge(Exception):
    """The registry did not answer `GET /v2/` with a Bearer challenge."""
