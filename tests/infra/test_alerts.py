"""The alerts and audit logs in infra/ agree with the code: the queries the Bicep deploys are the tested ones
(tests/appinsights.py), they name the code's outcomes, events, fields and metrics, and the rules, action
group and diagnostic settings are wired as docs/observability.md says."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from croniter import croniter

from rotator import metrics, telemetry
from rotator.core.results import Action
from rotator.logs import ALERT_ACTIONS, FIELDS, SCAN_COMPLETED
from rotator.settings import SETTINGS
from tests.appinsights import ALERT_FILES, ALERT_LETS, alert_query, matches
from tests.infra.bicep_ast import INFRA, ROOT, Template, body, path
from tests.infra.bicep_eval import evaluate
from tests.infra.crosscheck import expression

Templates = Mapping[str, Template]
ALERTS_MODULE = "modules/alerts.bicep"


def _rules(templates: Templates) -> dict[str, dict[str, Any]]:
    """The alert rules as deployed with the Bicep defaults: name -> evaluated rule object."""
    module = templates[ALERTS_MODULE]
    scope: dict[str, Any] = {name: p.get("default") for name, p in module.ast["parameters"].items()}
    scope.update({"applicationInsightsId": "APPI", "logAnalyticsId": "LOG", "deadLetterContainerName":
                  templates["main.bicep"].ast["parameters"]["deadLetterContainerName"]["default"]})
    rules = evaluate(module.variable("rules"), scope)
    return {rule["name"]: {**rule, "query": _unescape(rule["query"])} for rule in rules}


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\'", "'")


def test_the_deployed_queries_are_the_tested_ones(templates: Templates) -> None:
    rules = _rules(templates)
    assert set(rules) == set(ALERT_FILES)
    for name, rule in rules.items():
        assert rule["query"] == alert_query(name), name
    assert set(ALERT_LETS) == {n for n, r in rules.items() if r["query"].startswith("let ")}


def test_every_rule_alerts_the_action_group_within_the_log_alert_limits(templates: Templates) -> None:
    module = templates[ALERTS_MODULE]
    resource = body(module.declarations("Microsoft.Insights/scheduledQueryRules")[0])
    assert path(resource, "properties", "actions", "actionGroups") == [expression("actionGroup.id")]
    criterion = path(resource, "properties", "criteria", "allOf")[0]
    assert (criterion["operator"], criterion["threshold"], criterion["timeAggregation"]) == ("GreaterThan", 0, "Count")
    rules = _rules(templates)
    for rule in rules.values():
        window = _duration(rule["window"])
        assert timedelta(minutes=5) <= _duration(rule["frequency"]) <= window <= timedelta(days=2), rule["name"]
    # A fired failure or expiry alert stays until a person closes it: later silence cannot resolve it.
    assert not rules["credential-expiry"]["autoMitigate"] and not rules["rotation-failures"]["autoMitigate"]
    assert rules["eventgrid-deadletter"]["scope"] == "LOG"
    assert {r["scope"] for n, r in rules.items() if n != "eventgrid-deadletter"} == {"APPI"}


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?", text)
    assert match, text
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def test_the_action_group_sends_email_and_an_optional_secure_webhook(templates: Templates) -> None:
    module = templates[ALERTS_MODULE]
    group = module.only_resource("Microsoft.Insights/actionGroups")["properties"]
    assert len(group["groupShortName"]) <= 12
    for key, parameter in (("emailReceivers", "alertEmail"), ("webhookReceivers", "alertWebhookUrl")):
        operands = path(group, key, "operator", "operands")
        assert operands["false_value"] == [] or operands["true_value"] == [], key
        assert parameter in json.dumps(operands["condition"])
    main = templates["main.bicep"]
    decorators = json.dumps(main.ast["parameters"]["alertWebhookUrl"]["decorators"])
    assert "secure" in decorators  # such URLs carry a key: never in deployment history
    params = main.module_params(ALERTS_MODULE)
    assert {params[name] for name in ("alertEmail", "alertWebhookUrl", "expiryAlertDays")} == {
        "alertEmail", "alertWebhookUrl", "expiryAlertDays"}


def test_the_failures_alert_fires_on_the_codes_outcomes() -> None:
    query = alert_query("rotation-failures")
    listed = re.search(r'tostring\(f\.action\) in \(([^)]*)\)', query)
    assert listed is not None
    actions = [item.strip().strip('"') for item in listed.group(1).split(",")]
    assert sorted(actions) == sorted(ALERT_ACTIONS)
    assert set(actions) <= set(get_args(Action))
    assert f'tostring(f.event) == "{SCAN_COMPLETED}"' in alert_query("scan-silence")


def test_the_queries_read_only_fields_and_metrics_the_code_writes() -> None:
    for name in ("rotation-failures", "scan-silence"):
        used = set(re.findall(r"\bf\.([a-z_]+)", alert_query(name)))
        assert used <= set(FIELDS), (name, used - set(FIELDS))
    names = {metrics.PASSWORD_EXPIRY, metrics.CERTIFICATE_EXPIRY, metrics.POISON_LENGTH}
    quoted = set(re.findall(r'"(rotator\.[a-z_.]+)"', "".join(alert_query(n) for n in ALERT_FILES)))
    assert quoted == names


def _event(now: datetime, **fields: Any) -> dict[str, Any]:
    """A traces row as the OpenTelemetry exporter sends a log_event line: every field a string dimension."""
    return {"timestamp": now, "message": json.dumps(fields),
            "customDimensions": {k: str(v) for k, v in fields.items()}}


def test_a_field_renamed_in_the_code_would_stop_the_failures_alert() -> None:
    """The evaluator is strict enough to notice: the same row with `outcome` instead of `action` matches nothing."""
    now = datetime.now(UTC)
    good = _event(now, event="token", registry="r", token="t", action="failed", code="Throttled", reason="429")
    renamed = _event(now, event="token", registry="r", token="t", outcome="failed", code="Throttled", reason="429")
    assert len(matches("rotation-failures", {"traces": [good]})) == 1
    assert matches("rotation-failures", {"traces": [renamed]}) == []


def test_the_deadletter_alert_matches_event_grids_blobs_only() -> None:
    now = datetime.now(UTC)

    def write(operation: str, key: str, status: str = "Success") -> dict[str, Any]:
        return {"TimeGenerated": now, "AccountName": "stabc", "OperationName": operation, "StatusText": status,
                "ObjectKey": f"/stabc/{key}"}

    dead = write("PutBlob", "eventgrid-deadletter/EVGS-ROTATOR/2026/3/4/5/0b4c1e5e-1c3e-4e7a-9d5e.json")
    others = [write("PutBlob", "acr-token-rotator-locks/reg/tok"), write("RenewBlobLease", "azure-webjobs-hosts/x"),
              write("PutBlob", "eventgrid-deadletter/EVGS/2026/3/4/5/a.json", status="AuthorizationFailure")]
    rows = matches("eventgrid-deadletter", {"StorageBlobLogs": [dead, *others]})
    assert [r["ObjectKey"] for r in rows] == [dead["ObjectKey"]]


def test_the_silence_window_is_two_periods_of_the_default_schedule(templates: Templates) -> None:
    schedule = {s.name: s.default for s in SETTINGS}["ROTATOR_SCHEDULE"]
    runs = croniter(schedule, datetime(2026, 1, 1, tzinfo=UTC), second_at_beginning=True)
    first, second = runs.get_next(datetime), runs.get_next(datetime)
    hours = templates["main.bicep"].ast["parameters"]["scanSilenceAlertHours"]["default"]
    assert timedelta(hours=hours) == 2 * (second - first)
    assert _rules(templates)["scan-silence"]["window"] == f"PT{hours}H"


def test_key_vault_audit_goes_to_the_workspace_for_created_and_opted_in_vaults(templates: Templates) -> None:
    audit = templates["modules/vault-audit.bicep"].only_resource("Microsoft.Insights/diagnosticSettings")
    assert audit["scope"] == "vault"
    assert [log["category"] for log in audit["properties"]["logs"]] == ["AuditEvent"]
    main = templates["main.bicep"]
    condition = json.dumps(main.module("modules/vault-audit.bicep")["condition"])
    assert "createVault" in condition and "auditExistingKeyVault" in condition
    assert main.module_params("modules/vault-audit.bicep")["logAnalyticsId"] == main.module_params(
        "modules/storage.bicep")["logAnalyticsId"]
    blob_log = templates["modules/storage.bicep"].only_resource("Microsoft.Insights/diagnosticSettings")
    assert blob_log["scope"] == "blobService"
    assert [log["category"] for log in blob_log["properties"]["logs"]] == ["StorageWrite"]


def test_the_worker_exports_with_opentelemetry_as_microsoft_documents(templates: Templates) -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"
    function_app = templates["modules/function-app.bicep"]
    settings = {entry["name"]: entry["value"] for entry in function_app.variable("platformSettings")}
    assert telemetry.ENABLE_SETTING in settings and telemetry.CONNECTION_SETTING in settings
    assert "openTelemetry" in json.dumps(settings[telemetry.ENABLE_SETTING])
    assert "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" in settings  # the exporter's Entra ID sign-in
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^azure-monitor-opentelemetry==\S+$", requirements, re.MULTILINE)
    assert (INFRA / "alerts").is_dir()
