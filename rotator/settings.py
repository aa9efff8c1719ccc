"""Typed settings from app settings / environment variables, validated once at start.

Every `ROTATOR_*` setting the code reads is declared in `SETTINGS` (infra tests cross-check the
Bicep app settings against it). A bad value raises SettingsError naming the setting.
Defaults are the Azure (production) values. The env printed by `python -m devstack up` only points
endpoints and trust at the local stand-ins; it relaxes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from rotator.core.resource_ids import ResourceIdError, TargetScope, parse_target_scope
from rotator.core.schedule import ScheduleError, validate_schedule

AZURE_ARM_ENDPOINT = "https://management.azure.com"
# The longest run, and the bound of every HTTP request: Azure's front end cuts a reply that has not started
# within 230 s, so 30 s stay for the host and the network.
MAX_RUN_TIMEOUT_SECONDS = 200
# Which managed identity the rotator runs as: its own setting first, so the one identity DefaultAzureCredential
# finds for every other process (Azure's AZURE_CLIENT_ID) need not be the rotator's; then Azure's; then none
# (the system-assigned identity).
IDENTITY_SETTING = "ROTATOR_IDENTITY_CLIENT_ID"
CLIENT_ID_SETTING = "AZURE_CLIENT_ID"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class SettingDoc:
    name: str
    default: str | None  # None = required where used
    meaning: str


SETTINGS: tuple[SettingDoc, ...] = (
    SettingDoc("ROTATOR_REGISTRIES", None,
               "Comma- or space-separated registry resource IDs to manage; an entry may also be a subscription "
               "(`/subscriptions/<id>`) or resource group ID, meaning every registry in it."),
    SettingDoc("ROTATOR_VAULT_URL", None, "Key Vault URL the credentials are published to, e.g. https://kv.vault.azure.net/"),
    SettingDoc("ROTATOR_VALIDITY_DAYS", "90", "Lifetime of a new password (days)."),
    SettingDoc("ROTATOR_RENEW_BEFORE_DAYS", "30",
               "Rotate when the active password expires within this many days. Must be below the validity."),
    SettingDoc("ROTATOR_MIN_OVERLAP_HOURS", "24",
               "Overlap guarantee: a credential that was current in Key Vault stays valid at least this long after "
               "it is superseded (App Service Key Vault references refresh within 24 h). Scans, events and --force "
               "wait for it; only revoke and drift healing do not. Validity minus renew-before must cover it "
               "(0-2160)."),
    SettingDoc("ROTATOR_MAX_PARALLEL", "4", "Tokens rotated at the same time by a scan (1-64)."),
    SettingDoc("ROTATOR_INCLUDE_TOKENS", "*", "Comma-separated fnmatch patterns of token names to manage."),
    SettingDoc("ROTATOR_EXCLUDE_TOKENS", "", "Comma-separated fnmatch patterns of token names to leave alone."),
    SettingDoc("ROTATOR_ADOPT_UNMANAGED", "true",
               "Adopt tokens that have no Key Vault secret yet (see README: adoption rule)."),
    SettingDoc("ROTATOR_VERIFY_TIMEOUT_SECONDS", "90",
               "How long a new password may take to log in (ACR replicates within 60 s) before the rotation fails "
               "(1-170)."),
    SettingDoc("ROTATOR_CLOCK_SKEW_SECONDS", "300", "Tolerance for clock differences between us, ARM and Key Vault."),
    SettingDoc("ROTATOR_DOCKERCONFIGJSON", "false",
               "Also publish `acr-<registry>-<token>-dockerconfigjson`, a .dockerconfigjson for Kubernetes."),
    SettingDoc("ROTATOR_LEASE_CONTAINER", "acr-token-rotator-locks",
               "Blob container holding one lease blob per token."),
    SettingDoc("ROTATOR_SCHEDULE", "0 0 */6 * * *", "NCRONTAB schedule of the timer scan (six fields, seconds first)."),
    SettingDoc("ROTATOR_QUEUE", "acr-token-rotations",
               "Storage queue (in AzureWebJobsStorage) the timer and Event Grid put one message per due token on; "
               "failed messages end in `<queue>-poison`. The queue trigger's name refers to it (%ROTATOR_QUEUE%)."),
    SettingDoc("ROTATOR_EXPIRY_ALERT_DAYS", "14",
               "`GET /api/health` answers 503 when a managed password or certificate expires within this many days "
               "(1-3650); the default of the expiry alert rule too."),
    SettingDoc("ROTATOR_ARM_ENDPOINT", AZURE_ARM_ENDPOINT, "Azure Resource Manager endpoint."),
    SettingDoc("ROTATOR_CALL_TIMEOUT_SECONDS", "30",
               "Bound of one Azure call, all its retries and waits included (5-60; README: Time bounds)."),
    SettingDoc("ROTATOR_MAX_RETRY_AFTER_SECONDS", "10",
               "Longest `Retry-After` the rotator waits for; a throttled call asking for longer fails at once as "
               "transient (0-60)."),
    SettingDoc("ROTATOR_RUN_TIMEOUT_SECONDS", "180",
               "Bound of one token's run, lock to release (30-200; an HTTP request is bounded by 200 s in all). "
               "Must exceed the verify timeout plus the call timeout."),
    SettingDoc(IDENTITY_SETTING, "",
               "Client ID (a GUID) of the user-assigned managed identity the rotator authenticates as; empty = "
               "`AZURE_CLIENT_ID`, and when that is empty too, the system-assigned identity."),
)
SETTING_NAMES = frozenset(s.name for s in SETTINGS)
_DEFAULTS = {s.name: s.default for s in SETTINGS}
_PATTERN = re.compile(r"^[A-Za-z0-9*?\[\]!._-]+$")


@dataclass(frozen=True)
class Settings:
    """Everything the engine needs to know from configuration."""

    targets: tuple[TargetScope, ...]
    vault_url: str
    validity: timedelta
    renew_before: timedelta
    min_overlap: timedelta
    max_parallel: int
    include_tokens: tuple[str, ...]
    exclude_tokens: tuple[str, ...]
    adopt_unmanaged: bool
    verify_timeout: timedelta
    clock_skew: timedelta
    dockerconfigjson: bool
    lease_container: str
    schedule: str
    arm_endpoint: str
    call_timeout: timedelta
    max_retry_after: timedelta
    run_timeout: timedelta
    storage_connection: str  # AzureWebJobsStorage connection string, or "" when identity-based
    storage_blob_url: str  # AzureWebJobsStorage__blobServiceUri (identity-based), or ""
    # ROTATOR_IDENTITY_CLIENT_ID, else AZURE_CLIENT_ID: a user-assigned identity; None = system-assigned
    identity_client_id: str | None = None
    storage_queue_url: str = ""  # AzureWebJobsStorage__queueServiceUri (identity-based), or ""
    queue: str = "acr-token-rotations"  # ROTATOR_QUEUE
    expiry_alert: timedelta = timedelta(days=14)  # ROTATOR_EXPIRY_ALERT_DAYS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate every setting; SettingsError names the first bad one."""
        reader = _Reader(env)
        validity = timedelta(days=reader.integer("ROTATOR_VALIDITY_DAYS", 1, 3650))
        renew_before = timedelta(days=reader.integer("ROTATOR_RENEW_BEFORE_DAYS", 0, 3649))
        if renew_before >= validity:
            raise SettingsError(
                f"ROTATOR_RENEW_BEFORE_DAYS ({renew_before.days}) must be shorter than "
                f"ROTATOR_VALIDITY_DAYS ({validity.days}), or every password would be due as soon as it is made")
        min_overlap = timedelta(hours=reader.integer("ROTATOR_MIN_OVERLAP_HOURS", 0, 2160))
        if validity - renew_before < min_overlap:
            raise SettingsError(
                f"ROTATOR_VALIDITY_DAYS ({validity.days}) minus ROTATOR_RENEW_BEFORE_DAYS ({renew_before.days}) "
                f"must be at least ROTATOR_MIN_OVERLAP_HOURS ({min_overlap.total_seconds() / 3600:.0f} h): a token "
                "would be due again before the credential it replaced may be invalidated")
        settings = cls(
            targets=reader.targets(),
            vault_url=reader.https_url("ROTATOR_VAULT_URL"),
            validity=validity,
            renew_before=renew_before,
            min_overlap=min_overlap,
            max_parallel=reader.integer("ROTATOR_MAX_PARALLEL", 1, 64),
            include_tokens=reader.patterns("ROTATOR_INCLUDE_TOKENS"),
            exclude_tokens=reader.patterns("ROTATOR_EXCLUDE_TOKENS"),
            adopt_unmanaged=reader.boolean("ROTATOR_ADOPT_UNMANAGED"),
            verify_timeout=timedelta(seconds=reader.integer("ROTATOR_VERIFY_TIMEOUT_SECONDS", 1, 170)),
            clock_skew=timedelta(seconds=reader.integer("ROTATOR_CLOCK_SKEW_SECONDS", 0, 3600)),
            dockerconfigjson=reader.boolean("ROTATOR_DOCKERCONFIGJSON"),
            lease_container=reader.container("ROTATOR_LEASE_CONTAINER"),
            schedule=reader.schedule("ROTATOR_SCHEDULE"),
            queue=reader.queue("ROTATOR_QUEUE"),
            expiry_alert=timedelta(days=reader.integer("ROTATOR_EXPIRY_ALERT_DAYS", 1, 3650)),
            arm_endpoint=reader.https_url("ROTATOR_ARM_ENDPOINT").rstrip("/"),
            call_timeout=timedelta(seconds=reader.integer("ROTATOR_CALL_TIMEOUT_SECONDS", 5, 60)),
            max_retry_after=timedelta(seconds=reader.integer("ROTATOR_MAX_RETRY_AFTER_SECONDS", 0, 60)),
            run_timeout=timedelta(seconds=reader.integer("ROTATOR_RUN_TIMEOUT_SECONDS", 30, MAX_RUN_TIMEOUT_SECONDS)),
            storage_connection=env.get("AzureWebJobsStorage", "").strip(),
            storage_blob_url=env.get("AzureWebJobsStorage__blobServiceUri", "").strip(),
            identity_client_id=_client_id(env),
            storage_queue_url=env.get("AzureWebJobsStorage__queueServiceUri", "").strip(),
        )
        if settings.verify_timeout + settings.call_timeout >= settings.run_timeout:
            raise SettingsError(
                f"ROTATOR_RUN_TIMEOUT_SECONDS ({settings.run_timeout.seconds}) must exceed "
                f"ROTATOR_VERIFY_TIMEOUT_SECONDS ({settings.verify_timeout.seconds}) plus "
                f"ROTATOR_CALL_TIMEOUT_SECONDS ({settings.call_timeout.seconds}): a run that waits the whole "
                "verify timeout must still have time to publish")
        return settings


def _client_id(env: Mapping[str, str]) -> str | None:
    """The identity to run as: ROTATOR_IDENTITY_CLIENT_ID, else AZURE_CLIENT_ID, else None (system-assigned).

    The one used must be a client ID (a GUID), or no identity would answer."""
    for name in (IDENTITY_SETTING, CLIENT_ID_SETTING):
        value = env.get(name, "").strip()
        if value and not _GUID.fullmatch(value):
            raise SettingsError(f"{name} must be the client ID (a GUID) of a user-assigned managed identity, "
                                f"got {value!r}")
        if value:
            return value.lower()
    return None


class _Reader:
    """Reads one setting at a time, with its default, and names it in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str) -> str:
        assert name in SETTING_NAMES, name
        value = self._env.get(name)
        if value is None or not value.strip():
            default = _DEFAULTS[name]
            return default if default is not None else ""
        return value.strip()

    def required(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise SettingsError(f"{name} is required and not set")
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        raw = self.text(name)
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def boolean(self, name: str) -> bool:
        raw = self.text(name).lower()
        if raw in ("true", "1", "yes", "on"):
            return True
        if raw in ("false", "0", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    def https_url(self, name: str) -> str:
        value = self.required(name)
        if not re.fullmatch(r"https://[^\s/?#]+(/[^\s?#]*)?", value):
            raise SettingsError(f"{name} must be an https:// URL, got {value!r}")
        return value

    def patterns(self, name: str) -> tuple[str, ...]:
        items = tuple(p for p in re.split(r"[,\s]+", self.text(name)) if p)
        for pattern in items:
            if not _PATTERN.fullmatch(pattern):
                raise SettingsError(f"{name} has an invalid token-name pattern {pattern!r}")
        return items

    def container(self, name: str) -> str:
        return self._storage_name(name, 63, "a valid blob container name")

    def queue(self, name: str) -> str:
        """Short enough for its poison queue (`<name>-poison`, the Functions host's name) to be a queue name too."""
        return self._storage_name(name, 56, "a Storage queue name leaving room for -poison")

    def _storage_name(self, name: str, longest: int, what: str) -> str:
        value = self.text(name)
        if not re.fullmatch(rf"[a-z0-9](?!.*--)[a-z0-9-]{{1,{longest - 2}}}[a-z0-9]", value):
            raise SettingsError(f"{name} must be {what} (3-{longest} lowercase letters, digits, single hyphens), "
                                f"got {value!r}")
        return value

    def schedule(self, name: str) -> str:
        value = self.text(name)
        try:
            validate_schedule(value)
        except ScheduleError as error:
            raise SettingsError(f"{name}: {error} (NCRONTAB, six fields, seconds first: got {value!r})") from None
        return value

    def targets(self) -> tuple[TargetScope, ...]:
        raw = self.text("ROTATOR_REGISTRIES")
        if not raw:
            raise SettingsError("ROTATOR_REGISTRIES is required and not set")
        try:
            return tuple(parse_target_scope(item) for item in re.split(r"[,\s]+", raw) if item)
        except ResourceIdError as error:
            raise SettingsError(f"ROTATOR_REGISTRIES: {error}") from None
