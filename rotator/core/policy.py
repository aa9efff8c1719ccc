"""Pure decisions of the password protocol: is a token due, which slot, what expiry.

No I/O and no clock: `now` is passed in, so every rule is unit-tested exhaustively.

Rules (README "How the rotator decides" repeats them for operators):
- A disabled token is skipped, even when forced: its new password could not be verified.
- A secret that names another registry/token, or has an unknown slot tag, is refused: we never
  overwrite what we do not manage.
- An event for a secret version that is no longer current is stale and skipped.
- With a secret, the *active* slot is the one in its `acr-slot` tag; we regenerate the other.
  Due when forced; when the active slot has no password or it has expired in ACR; when
  `now + clock_skew >= active expiry - renew_before`; a password without expiry (ACR's default is
  9999-12-31) is rotated by age: due when `now + clock_skew >= created + validity - renew_before`.
- Without a secret (adoption, when enabled): regenerate the first empty slot (password1 before
  password2); when both hold passwords, regenerate password2 and leave password1 alone.
- Per-token overrides of validity and renew-before come from the secret's tags.
- The new password expires at `now + validity`; its secret version is valid from `now - clock_skew`
  so a Key Vault clock slightly behind ours never sees it as not yet valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from rotator.core.model import (
    PASSWORD_SLOTS,
    TAG_REGISTRY,
    TAG_RENEW_BEFORE_DAYS,
    TAG_SLOT,
    TAG_TOKEN,
    TAG_VALIDITY_DAYS,
    PasswordName,
    PasswordSlot,
    SecretState,
    TokenState,
    other_slot,
)

# ACR reports "never expires" as 9999-12-31; anything this far out counts as no expiry.
NEVER_EXPIRES_AFTER = datetime(9000, 1, 1, tzinfo=UTC)

Action = Literal["rotate", "skip", "refuse"]


@dataclass(frozen=True)
class Lifetimes:
    """How long passwords live and how early they are replaced."""

    validity: timedelta
    renew_before: timedelta
    clock_skew: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    slot: PasswordName | None = None  # the slot to regenerate when rotating
    new_expiry: datetime | None = None
    not_before: datetime | None = None
    due_at: datetime | None = None  # when the token next becomes due (for status), if known


def effective_lifetimes(defaults: Lifetimes, secret: SecretState | None) -> Lifetimes | str:
    """Apply the secret's override tags; a string is the reason they are invalid."""
    if secret is None:
        return defaults
    validity, renew_before = defaults.validity, defaults.renew_before
    for tag in (TAG_VALIDITY_DAYS, TAG_RENEW_BEFORE_DAYS):
        raw = secret.tags.get(tag)
        if raw is None:
            continue
        try:
            days = int(raw.strip())
        except ValueError:
            return f"tag {tag}={raw!r} is not a whole number of days"
        if days < 0 or days > 3650:
            return f"tag {tag}={days} is outside 0..3650 days"
        if tag == TAG_VALIDITY_DAYS:
            validity = timedelta(days=days)
        else:
            renew_before = timedelta(days=days)
    if renew_before >= validity:
        return f"renew-before ({renew_before.days} d) must be shorter than validity ({validity.days} d)"
    return Lifetimes(validity, renew_before, defaults.clock_skew)


def has_expiry(slot: PasswordSlot) -> bool:
    return slot.expiry is not None and slot.expiry < NEVER_EXPIRES_AFTER


def due_at(slot: PasswordSlot, lifetimes: Lifetimes) -> datetime | None:
    """When the password in `slot` must be replaced; None if that cannot be known (no dates)."""
    if has_expiry(slot):
        assert slot.expiry is not None
        return slot.expiry - lifetimes.renew_before
    if slot.created is not None:
        return slot.created + lifetimes.validity - lifetimes.renew_before
    return None


def check_ownership(token: TokenState, secret: SecretState) -> str | None:
    """Why the secret is not ours to rotate for this token, or None when it is."""
    registry, name = secret.tags.get(TAG_REGISTRY), secret.tags.get(TAG_TOKEN)
    if registry is None or name is None:
        return f"secret {secret.name} exists but has no {TAG_REGISTRY}/{TAG_TOKEN} tags: not managed by the rotator"
    if registry.lower() != token.registry.name.lower() or name.lower() != token.name.lower():
        return f"secret {secret.name} is tagged for {registry}/{name}, not {token.registry.name}/{token.name}"
    if secret.slot is None:
        return f"secret {secret.name} has slot tag {secret.tags.get(TAG_SLOT)!r}; expected password1 or password2"
    return None


def decide(
    token: TokenState,
    secret: SecretState | None,
    now: datetime,
    defaults: Lifetimes,
    *,
    force: bool = False,
    adopt: bool = True,
    event_version: str | None = None,
) -> Decision:
    """Decide what to do with one token. Pure: same inputs, same answer."""
    if not token.enabled:
        return Decision("skip", "token is disabled")
    if secret is not None:
        problem = check_ownership(token, secret)
        if problem:
            return Decision("refuse", problem)
    if event_version is not None and (secret is None or secret.version != event_version):
        return Decision("skip", "stale event: the secret version it names is no longer current")
    lifetimes = effective_lifetimes(defaults, secret)
    if isinstance(lifetimes, str):
        return Decision("refuse", lifetimes)
    if secret is None:
        return _adopt(token, now, lifetimes, force, adopt)
    return _rotate_standby(token, secret, now, lifetimes, force)


def _plan(slot: PasswordName, reason: str, now: datetime, lifetimes: Lifetimes) -> Decision:
    return Decision("rotate", reason, slot, now + lifetimes.validity, now - lifetimes.clock_skew)


def _rotate_standby(token: TokenState, secret: SecretState, now: datetime, lifetimes: Lifetimes,
                    force: bool) -> Decision:
    active = secret.slot
    assert active is not None  # check_ownership refused secrets without a valid slot tag
    target = other_slot(active)
    if force:
        return _plan(target, "forced", now, lifetimes)
    slot = token.passwords.get(active)
    if slot is None:
        return _plan(target, f"active slot {active} has no password in ACR", now, lifetimes)
    if has_expiry(slot) and slot.expiry is not None and slot.expiry <= now + lifetimes.clock_skew:
        return _plan(target, f"active password {active} has expired", now, lifetimes)
    when = due_at(slot, lifetimes)
    if when is None:
        return _plan(target, f"active password {active} has neither expiry nor creation time", now, lifetimes)
    if now + lifetimes.clock_skew >= when:
        basis = "expires" if has_expiry(slot) else "was created"
        return _plan(target, f"active password {active} {basis} within the renewal window", now, lifetimes)
    # The skew tolerance makes it due that much earlier: report the moment it really becomes due.
    when -= lifetimes.clock_skew
    return Decision("skip", f"not due until {when.isoformat(timespec='seconds')}", due_at=when)


def _adopt(token: TokenState, now: datetime, lifetimes: Lifetimes, force: bool, adopt: bool) -> Decision:
    if not adopt and not force:
        return Decision("skip", "no Key Vault secret yet and adoption is off (ROTATOR_ADOPT_UNMANAGED=false)")
    empty = [name for name in PASSWORD_SLOTS if name not in token.passwords]
    if empty:
        return _plan(empty[0], f"adopting: {empty[0]} is empty", now, lifetimes)
    return _plan("password2", "adopting: both slots hold passwords; password2 is regenerated, password1 kept",
                 now, lifetimes)
