"""Fan-out on the rotation queue: the timer's scan enqueues, a queue-triggered run works one message.

Why: a timer invocation runs on one instance; rotations mostly wait for a new password to replicate
(up to 60 s), so one invocation rotates a few hundred tokens in its 30 minutes however many instances
Flex Consumption could add. The scan only plans and puts one message per due token (and per
certificate to push) on ROTATOR_QUEUE; the queue trigger scales out and each run is the same
per-token protocol the CLI and HTTP use, under the token's lease, so a message delivered twice
rotates once (the second run finds the token busy or no longer due). docs/architecture.md, Fan-out.
"""

from __future__ import annotations

from azure.core.exceptions import AzureError, ResourceNotFoundError

from rotator.azure.acr import AcrError
from rotator.core.results import Result
from rotator.core.work import Source, WorkItem, certificate_item, password_item
from rotator.logs import SCAN_COMPLETED, log_event
from rotator.protocols import password_rotation
from rotator.protocols.certificate_rotation import plan_certificates, sync_from_vault
from rotator.protocols.engine import Engine, azure_failure, log_result
from rotator.protocols.scan import ScanPlan, plan_all, planned_results
from rotator.protocols.targets import outside_targets, token_excluded


def enqueue_scan(engine: Engine, source: Source = "timer") -> tuple[ScanPlan, list[Result]]:
    """Plan every token; enqueue the due ones and the certificate pushes; the rest as Results, like a scan.

    A message that could not be sent is a failed Result (transient when a rerun may send it)."""
    scan = plan_all(engine, certificates=True)
    results = planned_results(engine, scan, dry_run=False)
    now = engine.clock()
    queued: list[tuple[WorkItem, Result]] = []
    for plan in scan.plans:
        if plan.decision.action == "rotate":
            token = plan.token
            queued.append((password_item(token.registry, token.name, source, now),
                           Result(token.registry.name, token.name, "queued", plan.decision.reason, plan.decision.slot,
                                  code=plan.decision.code)))
    pushes, notices = plan_certificates(engine, [p.token for p in scan.plans], scan.certificates)
    for token, certificate in pushes:
        queued.append((certificate_item(token.registry, token.name, certificate.name, source, now),
                       Result(token.registry.name, token.name, "queued",
                              f"Key Vault certificate {certificate.name} ({certificate.thumbprint}) is not on the "
                              "token yet")))
    errors = engine.queue.send_all(item.encode() for item, _ in queued)
    for (_, result), error in zip(queued, errors, strict=True):
        results.append(result if error is None else azure_failure(
            result.registry, result.token, error, "could not enqueue: "))
    results.extend(notices)
    for result in results:
        if result.action in ("queued", "failed") and result.token != "*":
            log_result(result)
    log_event(SCAN_COMPLETED, mode="enqueue", source=source, tokens=len(scan.plans),
              queued=sum(r.action == "queued" for r in results), failed=sum(r.failed for r in results),
              orphaned=len(scan.orphans))
    return scan, sorted(results, key=lambda r: (r.registry, r.token))


def run_item(engine: Engine, item: WorkItem) -> Result:
    """One message's run: checked against the settings first (a message is no authority on what is managed),
    then the token's protocol. Never raises for one token's problems."""
    registry, token = item.registry, item.token
    refusal = outside_targets(engine.settings, registry) or token_excluded(engine.settings, registry.name, token)
    if refusal is not None:
        return _early(Result(registry.name, token, "refused", refusal, code="not-managed"))
    try:
        login_server = engine.acr.login_server(registry)
    except ResourceNotFoundError:
        return _early(Result(registry.name, token, "skipped", f"registry {registry} no longer exists",
                             code="not-found"))
    except AzureError as error:
        return _early(azure_failure(registry.name, token, error))
    except AcrError as error:  # the registry reports no login server
        return _early(Result(registry.name, token, "failed", str(error)))
    if item.kind == "password":
        return password_rotation.rotate(engine, registry, login_server, token, force=item.force,
                                        event_version=item.event_version)
    return _certificate(engine, item, login_server)


def _certificate(engine: Engine, item: WorkItem, login_server: str) -> Result:
    """Put the current version of the message's Key Vault certificate on the token its tags name."""
    registry, token, name = item.registry, item.token, str(item.certificate)
    try:
        mapped = engine.certificates.get(name)
        if mapped is None or (mapped.registry.lower(), mapped.token.lower()) != (registry.name.lower(), token.lower()):
            return _early(Result(registry.name, token, "refused", f"Key Vault certificate {name} is not tagged for "
                                                                  f"{registry.name}/{token}", code="foreign-secret"))
        return sync_from_vault(engine, mapped, registry, login_server)
    except ResourceNotFoundError:
        return _early(Result(registry.name, token, "skipped", f"Key Vault certificate {name} no longer exists",
                             code="not-found"))
    except ValueError as error:  # no public certificate in the current version yet: its next event comes
        return _early(Result(registry.name, token, "skipped", str(error), code="not-ready"))
    except AzureError as error:
        return _early(azure_failure(registry.name, token, error))


def _early(result: Result) -> Result:
    """A result reached before the token's run (which logs its own): logged the same way."""
    log_result(result)
    return result
