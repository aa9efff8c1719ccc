"""Pure decisions of the password protocol: is a token due, which slot, what expiry, may it be done yet.

No I/O and no clock: `now` is passed in, so every rule is unit-tested exhaustively.

Rules (README "How the rotator decides" repeats them for operators):
- A disabled token is skipped, even when forced: its new password could not be verified.
- Never overwrite what we do not manage; each of these is refused before any ARM write:
  the token's secret is soft-deleted (the reason gives the `az keyvault secret recover` command);
  a secret of that name has no rotator tags, is tagged for another registry/token, or has an unknown
  slot tag; with ROTATOR_DOCKERCONFIGJSON the companion name is soft-deleted, holds a secret that is
  not this token's, or is the password secret name of another token (`tok` vs `tok-dockerconfigjson`).
- An event for a secret version that is no longer current is stale and skipped.
- Per-token overrides of validity and renew-before come from the secret's tags; invalid ones, or ones
  leaving less than the overlap window between a publish and the next due date, are refused.
- With a secret, the *active* slot is the one in its `acr-slot` tag; we regenerate the other.
- The current credential is dead when the active slot has no password, has expired, or drifted (its
  ARM creationTime differs from the `acr-slot-created` tag the publish recorded: someone regenerated
  it elsewhere). Then the standby is rotated at once (drift healing), even within the overlap window.
  A version without the tag (published before it existed) is "unknown", never drift.
- A forced request that saw version V when it was made is satisfied by any newer current version
  (a rotation published after the request): it is skipped as `coalesced`, naming that version.
- Due when forced; when `now + clock_skew >= active expiry - renew_before`; a password without expiry
  (ACR's default is 9999-12-31) is rotated by age: due when `now + clock_skew >= created + validity -
  renew_before`.
- Overlap: a due or forced rotation regenerates the standby only when the credential it holds has been
  superseded for `min_overlap` (it was current until the current version was written). A standby that is
  empty, expired, or was created after the current version was written (it was never current) is free.
  So is one no earlier version of the secret held (`history`: the secret's versions, listed by the
  protocol only when the rule would otherwise wait): a token adopted, or published by hand, while its
  other slot already held a password that never reached Key Vault. An earlier version counts as holding
  the standby when its slot tag names it and its `acr-slot-created` tag is the standby's creation time,
  or it has no creation tag, or no slot tag at all (it could have held anything). Otherwise the decision
  is `wait`, with the moment it becomes possible.
- Without a secret (adoption, when enabled): regenerate the first empty slot (password1 before
  password2); when both hold passwords, regenerate password2 and leave password1 alone.
- The new password expires at `now + validity`; its secret version is valid from `now - clock_skew`
  so a Key Vault clock slightly behind ours never sees it as not yet valid.
- Revoke (`plan_revoke`, for a leak) ignores the overlap: the named slot (default: the active one)
  loses its password; when it holds the live current credential, the other slot is regenerated and
  published first. A version whose revoke was interrupted after publishing finishes with the removal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from rotator.core.model import (
    PASSWORD_SLOTS,
    TAG_REGISTRY,
    TAG_RENEW_BEFORE_DAYS,
    TAG_REVOKING,
    TAG_SLOT,
    TAG_TOKEN,
    TAG_VALIDITY_DAYS,
    Companion,
    PasswordName,
    PasswordSlot,
    SecretState,
    TokenState,
    VaultFacts,
    format_time,
    other_slot,
    password_name,
    same_creation,
    secret_name,
)

# Key Vault stamps a version's creation to the second (the write happened within the second after it).
KEY_VAULT_RESOLUTION = timedelta(seconds=1)
# ACR reports "never expires" as 9999-12-31; anything this far out counts as no expiry.
NEVER_EXPIRES_AFTER = datetime(9000, 1, 1, tzinfo=UTC)

Action = Literal["rotate", "skip", "refuse", "wait"]

# What a skipped stale event says, in the decision and in the event trigger's own early check alike.
STALE_EVENT = "stale event: the secret version it names is no longer current"


@dataclass(frozen=True)
class Lifetimes:
    """How long passwords live, how early they are replaced, and how long a superseded one stays valid."""

    validity: timedelta
    renew_before: timedelta
    clock_skew: timedelta = timedelta(minutes=5)
    min_overlap: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    slot: PasswordName | None = None  # the slot to regenerate when rotating (or waiting to)
    new_expiry: datetime | None = None
    not_before: datetime | None = None
    due_at: datetime | None = None  # when the token next becomes due (skip) or rotatable (wait), if known
    code: str | None = None  # stable cause: drift, overlap, coalesced, soft-deleted-secret, foreign-secret...
    version: str | None = None  # coalesced: the secret version that satisfied the request


@dataclass(frozen=True)
class Forced:
    """A forced request and the secret version that was current when it was made (None: no secret)."""

    seen_version: str | None


def effective_lifetimes(defaults: Lifetimes, secret: SecretState | None) -> Lifetimes | str:
    """Apply the secret's override tags; a string is the reason they are invalid."""
    if secret is None or not any(tag in secret.tags for tag in (TAG_VALIDITY_DAYS, TAG_RENEW_BEFORE_DAYS)):
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
    if validity - renew_before < defaults.min_overlap:
        return (f"tags {TAG_VALIDITY_DAYS}/{TAG_RENEW_BEFORE_DAYS} leave {(validity - renew_before).days} d between "
                f"a publish and the next due date, less than ROTATOR_MIN_OVERLAP_HOURS "
                f"({_hours(defaults.min_overlap)} h): a rotation would cut the previous credential short")
    return Lifetimes(validity, renew_before, defaults.clock_skew, defaults.min_overlap)


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
    if not secret.owned_by(token.registry.name, token.name):
        return f"secret {secret.name} is tagged for {registry}/{name}, not {token.registry.name}/{token.name}"
    if secret.slot is None:
        return f"secret {secret.name} has slot tag {secret.tags.get(TAG_SLOT)!r}; expected password1 or password2"
    return None


def recover_command(vault_name: str, name: str) -> str:
    return f"az keyvault secret recover --vault-name {vault_name} --name {name}"


def _soft_deleted(vault_name: str, name: str, what: str) -> Decision:
    return Decision("refuse", f"{what} {name} is soft-deleted in Key Vault; nothing was changed. Recover it with "
                              f"`{recover_command(vault_name, name)}` (or purge it to start over)",
                    code="soft-deleted-secret")


def _companion_problem(token: TokenState, facts: VaultFacts, companion: Companion) -> Decision | None:
    if companion.deleted:
        return _soft_deleted(facts.vault_name, companion.name, "the .dockerconfigjson companion")
    if companion.claimed_by is not None:
        return Decision("refuse", f"the .dockerconfigjson companion name {companion.name} is the password secret "
                                  f"name of token {companion.claimed_by}; rename one of the tokens or turn "
                                  "ROTATOR_DOCKERCONFIGJSON off", code="companion-conflict")
    found = companion.secret
    if found is not None and not found.owned_by(token.registry.name, token.name):
        registry, name = found.tags.get(TAG_REGISTRY), found.tags.get(TAG_TOKEN)
        owner = (f"is tagged for {registry}/{name}" if registry is not None and name is not None
                 else f"has no {TAG_REGISTRY}/{TAG_TOKEN} tags")
        return Decision("refuse", f"the .dockerconfigjson companion {companion.name} exists and {owner}: not "
                                  "this token's to overwrite", code="foreign-secret")
    return None


def refusal(token: TokenState, secret: SecretState | None, facts: VaultFacts | None) -> Decision | None:
    """Why nothing at all may be written for this token (Key Vault state we do not own), or None."""
    if secret is None and facts is not None and facts.secret_deleted:
        return _soft_deleted(facts.vault_name, secret_name(token.registry.name, token.name), "the token's secret")
    if secret is not None:
        problem = check_ownership(token, secret)
        if problem:
            return Decision("refuse", problem, code="foreign-secret")
    if facts is not None and facts.companion is not None:
        return _companion_problem(token, facts, facts.companion)
    return None


def decide(
    token: TokenState,
    secret: SecretState | None,
    now: datetime,
    defaults: Lifetimes,
    *,
    force: bool | Forced = False,
    adopt: bool = True,
    event_version: str | None = None,
    facts: VaultFacts | None = None,
    history: Sequence[SecretState] | None = None,
) -> Decision:
    """Decide what to do with one token. Pure: same inputs, same answer.

    `history` (every version of the token's secret, properties only) lets a standby that no version ever
    held be rotated within the overlap window; without it such a standby waits (the safe answer)."""
    if not token.enabled:
        return Decision("skip", "token is disabled")
    refused = refusal(token, secret, facts)
    if refused:
        return refused
    if stale_event(event_version, secret):
        return Decision("skip", STALE_EVENT)
    lifetimes = effective_lifetimes(defaults, secret)
    if isinstance(lifetimes, str):
        return Decision("refuse", lifetimes, code="invalid-override")
    if secret is None:
        return _adopt(token, now, lifetimes, bool(force), adopt)
    return _rotate_standby(token, secret, now, lifetimes, force, history)


def stale_event(event_version: str | None, secret: SecretState | None) -> bool:
    """Whether an event names a secret version that is no longer current (or no secret at all): a later
    write superseded it, and that write's own event is the one to act on."""
    return event_version is not None and (secret is None or secret.version != event_version)


def _plan(slot: PasswordName, reason: str, now: datetime, lifetimes: Lifetimes, code: str | None = None) -> Decision:
    return Decision("rotate", reason, slot, now + lifetimes.validity, now - lifetimes.clock_skew, code=code)


def current_is_dead(token: TokenState, secret: SecretState, now: datetime,
                    lifetimes: Lifetimes) -> tuple[str, str | None] | None:
    """(reason, code) when the credential in Key Vault can no longer log in; None when it still can."""
    active = secret.slot
    assert active is not None  # check_ownership refused secrets without a valid slot tag
    slot = token.passwords.get(active)
    if slot is None:
        return f"active slot {active} has no password in ACR", None
    if has_expiry(slot) and slot.expiry is not None and slot.expiry <= now + lifetimes.clock_skew:
        return f"active password {active} has expired", None
    recorded = secret.slot_created
    if recorded is not None and slot.created is not None and not same_creation(recorded, slot.created):
        return (f"drift: {active} was regenerated outside the rotator (ACR: created {format_time(slot.created)}; "
                f"Key Vault's version records {format_time(recorded)}), so the credential in Key Vault no longer "
                f"logs in; healing by rotating {other_slot(active)}", "drift")
    return None


def standby_free_at(token: TokenState, secret: SecretState, standby: PasswordName, now: datetime,
                    lifetimes: Lifetimes) -> datetime | None:
    """From when `standby` may be regenerated without cutting the overlap window short; None = already."""
    slot = token.passwords.get(standby)
    if slot is None or secret.created is None:
        return None
    if has_expiry(slot) and slot.expiry is not None and slot.expiry <= now:
        return None  # already dead: nothing to break
    if slot.created is not None and slot.created >= secret.created + KEY_VAULT_RESOLUTION:
        # Made after the current version was written (a run that failed to publish): never current. Only Key
        # Vault's whole-second stamps need a margin: a standby that was current was generated at least the
        # overlap window before that write, far more than any clock difference between ARM and Key Vault.
        return None
    return secret.created + lifetimes.min_overlap


def held_in_vault(history: Sequence[SecretState], standby: PasswordSlot) -> bool:
    """Whether a version of the secret may have held the standby's current password (consumers may hold it).

    Conservative: a version without a creation tag (published before it existed), without a valid slot tag
    (it could have held anything), or a standby without a creation time counts as held."""
    for version in history:
        if version.slot is None:
            return True
        if version.slot != standby.name:
            continue
        recorded = version.slot_created
        if recorded is None or standby.created is None or same_creation(recorded, standby.created):
            return True
    return False


def _rotate_standby(token: TokenState, secret: SecretState, now: datetime, lifetimes: Lifetimes,
                    force: bool | Forced, history: Sequence[SecretState] | None) -> Decision:
    active = secret.slot
    assert active is not None  # check_ownership refused secrets without a valid slot tag
    target = other_slot(active)
    dead = current_is_dead(token, secret, now, lifetimes)
    if dead is not None:
        reason, code = dead
        return _plan(target, reason, now, lifetimes, code)
    if isinstance(force, Forced) and secret.version != force.seen_version:
        return Decision("skip", f"forced rotation satisfied by version {secret.version} ({active}), published "
                                "after the request was made", code="coalesced", version=secret.version)
    if force:
        why = "forced"
    else:
        slot = token.passwords[active]
        when = due_at(slot, lifetimes)
        if when is None:
            why = f"active password {active} has neither expiry nor creation time"
        elif now + lifetimes.clock_skew >= when:
            why = f"active password {active} {'expires' if has_expiry(slot) else 'was created'} within the " \
                  "renewal window"
        else:
            # The skew tolerance makes it due that much earlier: report the moment it really becomes due.
            when -= lifetimes.clock_skew
            return Decision("skip", f"not due until {when.isoformat(timespec='seconds')}", due_at=when)
    free_at = standby_free_at(token, secret, target, now, lifetimes)
    if free_at is not None and now < free_at:
        if history is not None and not held_in_vault(history, token.passwords[target]):
            return _plan(target, f"{why}; {target} was never published in Key Vault (no version of "
                                 f"{secret.name} held it), so no consumer relies on it", now, lifetimes)
        return Decision("wait", f"{why}, but {target} held the credential current in Key Vault until "
                                f"{_when(secret.created)}; it stays valid for ROTATOR_MIN_OVERLAP_HOURS "
                                f"({_hours(lifetimes.min_overlap)} h) and becomes rotatable at {_when(free_at)}",
                        slot=target, due_at=free_at, code="overlap")
    return _plan(target, why, now, lifetimes)


def adoption_slot(token: TokenState) -> PasswordName:
    """The slot adoption regenerates: the first empty one, else password2 (password1 is left alone)."""
    empty = [name for name in PASSWORD_SLOTS if name not in token.passwords]
    return empty[0] if empty else "password2"


def _adopt(token: TokenState, now: datetime, lifetimes: Lifetimes, force: bool, adopt: bool) -> Decision:
    if not adopt and not force:
        return Decision("skip", "no Key Vault secret yet and adoption is off (ROTATOR_ADOPT_UNMANAGED=false)")
    slot = adoption_slot(token)
    if slot in token.passwords:
        return _plan(slot, "adopting: both slots hold passwords; password2 is regenerated, password1 kept",
                     now, lifetimes)
    return _plan(slot, f"adopting: {slot} is empty", now, lifetimes)


# --- revoke -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevokePlan:
    """What a revoke does: regenerate and publish `generate` first (if any), then remove `remove`."""

    action: Literal["revoke", "skip", "refuse"]
    reason: str
    generate: PasswordName | None = None
    remove: PasswordName | None = None
    new_expiry: datetime | None = None
    not_before: datetime | None = None
    code: str | None = None


def plan_revoke(token: TokenState, secret: SecretState | None, now: datetime, defaults: Lifetimes, *,
                slot: PasswordName | None = None, facts: VaultFacts | None = None) -> RevokePlan:
    """Plan the leak response for one token. Pure. The overlap window does not apply."""
    if not token.enabled:
        return RevokePlan("refuse", "token is disabled, so none of its passwords logs in; enable it to revoke "
                                    "with a verified replacement", code="token-disabled")
    refused = refusal(token, secret, facts)
    if refused is not None:
        return RevokePlan("refuse", refused.reason, code=refused.code)
    lifetimes = effective_lifetimes(defaults, secret)
    if isinstance(lifetimes, str):
        return RevokePlan("refuse", lifetimes, code="invalid-override")
    if secret is None:
        keep = other_slot(slot) if slot else adoption_slot(token)
        return _replace(keep, f"no Key Vault secret yet: {keep} is generated and published, {other_slot(keep)} "
                              "removed", now, lifetimes)
    active = secret.slot
    assert active is not None  # refusal() refused secrets without a valid slot tag
    pending = password_name(secret.tags.get(TAG_REVOKING))
    if pending is not None and slot in (None, pending) and _interrupted(token, secret, pending, lifetimes):
        return RevokePlan("revoke", f"finishing an interrupted revoke: {active} is published, {pending} is removed",
                          remove=pending)
    target = slot or active
    if target == active or current_is_dead(token, secret, now, lifetimes) is not None:
        new = other_slot(target)
        return _replace(new, f"{target} is revoked: {new} is regenerated and published first, then {target} "
                             "is removed", now, lifetimes, remove=target)
    if target not in token.passwords:
        return RevokePlan("skip", f"{target} holds no password: nothing to revoke", code="nothing-to-revoke")
    return RevokePlan("revoke", f"{target} is the standby: it is removed; the current credential ({active}) "
                                "stays", remove=target)


def _replace(new: PasswordName, reason: str, now: datetime, lifetimes: Lifetimes,
             remove: PasswordName | None = None) -> RevokePlan:
    return RevokePlan("revoke", reason, generate=new, remove=remove or other_slot(new),
                      new_expiry=now + lifetimes.validity, not_before=now - lifetimes.clock_skew)


def _interrupted(token: TokenState, secret: SecretState, pending: PasswordName, lifetimes: Lifetimes) -> bool:
    """The slot a revoke meant to remove still holds the password it had when the revoke published.

    Within the clock skew it counts as still there: removing a password made right after is harmless,
    since it was never published."""
    slot = token.passwords.get(pending)
    if slot is None or pending == secret.slot:
        return False
    return slot.created is None or secret.created is None or slot.created <= secret.created + lifetimes.clock_skew


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "an unknown time"


def _hours(span: timedelta) -> int:
    return int(span.total_seconds() // 3600)
