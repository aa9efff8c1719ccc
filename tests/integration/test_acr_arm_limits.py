"""ARM's throttling in the ACR stand-in: headers on every answer, per-principal and global buckets, 429s the
SDK absorbs. Tests that want a 429 lower the limits explicitly; the defaults are Azure's."""

from __future__ import annotations

import pytest
import requests

from devstack import bearer
from devstack.control import AuthzControl, ControlError, token_spec
from tests.integration import test_acr_arm_support as support
from tests.integration.test_acr_arm_support import ARM_RESOURCE, RESOURCE_GROUP, ArmStandIn, registry_path

arm_server, arm = support.arm_server, support.arm  # the shared fixtures

SUBSCRIPTION_REGISTRIES = f"/subscriptions/{support.SUBSCRIPTION}/providers/Microsoft.ContainerRegistry/registries"


def reader(arm: ArmStandIn, name: str) -> dict[str, str]:
    """A new principal of the stack with the Reader role on the subscription: its own ARM buckets."""
    authz = AuthzControl(arm.base_url, verify=str(arm.ca_file))
    principal = authz.create_principal(name)
    authz.assign(principal.object_id, "Reader", f"/subscriptions/{support.SUBSCRIPTION}")
    return {"Authorization": f"Bearer {bearer.issue(arm.key, ARM_RESOURCE, principal)[0]}"}


def test_every_answer_reports_what_is_left_per_principal_and_globally(arm: ArmStandIn) -> None:
    arm.control.seed("limitsreg01", tokens=[token_spec("one-token")])
    read = arm.raw("GET", f"{registry_path('limitsreg01')}/tokens")
    missing = arm.raw("GET", f"{registry_path('limitsreg01')}/tokens/missing-token")
    write = arm.raw("PATCH", f"{registry_path('limitsreg01')}/tokens/one-token", body={"properties": {}})
    delete = arm.raw("DELETE", f"{registry_path('limitsreg01')}/tokens/one-token")

    assert read.headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"
    assert read.headers["x-ms-ratelimit-remaining-subscription-global-reads"] == "3749"
    assert missing.status_code == 404 and int(missing.headers["x-ms-ratelimit-remaining-subscription-reads"]) <= 248
    assert write.headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"
    assert write.headers["x-ms-ratelimit-remaining-subscription-global-writes"] == "2999"
    assert delete.headers["x-ms-ratelimit-remaining-subscription-deletes"] == "199"
    assert "x-ms-ratelimit-remaining-subscription-reads" not in write.headers


def test_an_empty_bucket_answers_429_with_retry_after_and_arm_s_error(arm: ArmStandIn) -> None:
    arm.control.set_limits(reads=(2, 0.01))
    answers = [arm.raw("GET", SUBSCRIPTION_REGISTRIES) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    throttled = answers[2]
    assert throttled.headers["Retry-After"] == "100"  # one token at 0.01 a second
    assert throttled.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    error = throttled.json()["error"]
    assert error["code"] == "SubscriptionRequestsThrottled"
    assert error["message"].startswith(f"Number of 'read' requests for subscription '{support.SUBSCRIPTION}' actor ")
    assert "Please try again after '100' seconds" in error["message"]
    assert arm.control.throttled() == 1
    assert arm.control.limits()["throttled"] == 1


def test_principals_have_their_own_buckets_and_share_the_global_one(arm: ArmStandIn) -> None:
    arm.control.set_limits(reads=(1, 0.01), global_reads=(2, 0.01))
    path = arm.base_url + SUBSCRIPTION_REGISTRIES
    first, second, third = (reader(arm, name) for name in ("reader-a", "reader-b", "reader-c"))

    def get(headers: dict[str, str]) -> requests.Response:
        return requests.get(path, params={"api-version": support.API_VERSION}, headers=headers,
                            verify=str(arm.ca_file), timeout=10)

    assert get(first).status_code == 200
    assert get(first).status_code == 429  # a's own bucket
    assert get(second).status_code == 200  # b has its own
    refused = get(third)  # c's bucket is full, the subscription's global one is not
    assert refused.status_code == 429
    assert " actor " not in refused.json()["error"]["message"]


def test_the_sdk_absorbs_throttling_by_honouring_retry_after(arm: ArmStandIn) -> None:
    arm.control.seed("limitsreg02", tokens=[token_spec(f"tok-{i:02d}") for i in range(6)])
    arm.control.set_limits(reads=(2, 2))
    client = arm.client()

    names = [str(t.name) for t in client.tokens.list(RESOURCE_GROUP, "limitsreg02")]
    gets = [client.tokens.get(RESOURCE_GROUP, "limitsreg02", name).name for name in names]

    assert gets == names == [f"tok-{i:02d}" for i in range(6)]  # creation order
    assert arm.control.throttled() > 0


def test_limits_control_refuses_bad_input_and_reset_restores_azure_figures(arm: ArmStandIn) -> None:
    with pytest.raises(ControlError, match="unknown limit"):
        arm.control.set_limits(readz=(1, 1))
    arm.control.set_limits(writes=(5, 1), enabled=False)
    assert arm.control.limits()["enabled"] is False
    arm.control.reset()
    limits = arm.control.limits()
    assert limits["enabled"] is True
    assert limits["limits"]["writes"] == {"capacity": 200, "per_second": 10}
