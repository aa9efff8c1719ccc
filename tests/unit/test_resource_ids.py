"""Unit tests for rotator.core.resource_ids: parsing registry / resource-group / subscription IDs, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rotator.core.resource_ids import (
    RegistryId,
    ResourceIdError,
    TargetScope,
    parse_registry_id,
    parse_target_scope,
)

SUB = "00000000-1111-2222-3333-444444444444"
RG_ID = f"/subscriptions/{SUB}/resourceGroups/rg-prod.eu_1(a)"
REGISTRY_ID = f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/contoso01"

GOOD_SCOPES = {
    "registry": (REGISTRY_ID, TargetScope(SUB, "rg-prod.eu_1(a)", "contoso01")),
    "registry-trailing-slash": (REGISTRY_ID + "/", TargetScope(SUB, "rg-prod.eu_1(a)", "contoso01")),
    "registry-surrounding-whitespace": (f"  {REGISTRY_ID}\n", TargetScope(SUB, "rg-prod.eu_1(a)", "contoso01")),
    "registry-lowercase-segments": (REGISTRY_ID.lower(), TargetScope(SUB, "rg-prod.eu_1(a)", "contoso01")),
    "registry-uppercase-segments": (
        f"/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/rg/PROVIDERS/MICROSOFT.CONTAINERREGISTRY/REGISTRIES/Contoso01",
        TargetScope(SUB, "rg", "Contoso01")),
    "resource-group": (RG_ID, TargetScope(SUB, "rg-prod.eu_1(a)")),
    "resource-group-trailing-slash": (RG_ID + "/", TargetScope(SUB, "rg-prod.eu_1(a)")),
    "subscription": (f"/subscriptions/{SUB}", TargetScope(SUB)),
    "subscription-trailing-slash": (f"/subscriptions/{SUB}/", TargetScope(SUB)),
    "any-subscription-id": ("/subscriptions/local-dev", TargetScope("local-dev")),
}

BAD_IDS = {
    "empty": "",
    "blank": "   ",
    "slash": "/",
    "no-leading-slash": f"subscriptions/{SUB}",
    "subscription-without-id": "/subscriptions/",
    "subscription-id-bad-chars": "/subscriptions/abc_def",
    "resource-group-without-name": f"/subscriptions/{SUB}/resourceGroups/",
    "resource-group-name-space": f"/subscriptions/{SUB}/resourceGroups/a b",
    "resource-group-too-long": f"/subscriptions/{SUB}/resourceGroups/{'r' * 91}",
    "providers-without-registry": f"{RG_ID}/providers/Microsoft.ContainerRegistry",
    "registries-without-name": f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries",
    "wrong-provider": f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/contoso01",
    "wrong-resource-type": f"{RG_ID}/providers/Microsoft.ContainerRegistry/webhooks/contoso01",
    "registry-name-too-short": f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/abcd",
    "registry-name-too-long": f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/{'a' * 51}",
    "registry-name-hyphen": f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/con-toso",
    "token-child-resource": f"{REGISTRY_ID}/tokens/ci",
    "double-slash": f"/subscriptions/{SUB}//resourceGroups/rg",
    "two-trailing-slashes": REGISTRY_ID + "//",
    "url-not-id": f"https://management.azure.com{REGISTRY_ID}",
    "login-server-not-id": "contoso01.azurecr.io",
    "query-string": REGISTRY_ID + "?api-version=2023-07-01",
}


@pytest.mark.parametrize(("text", "expected"), GOOD_SCOPES.values(), ids=GOOD_SCOPES.keys())
def test_parse_target_scope(text: str, expected: TargetScope) -> None:
    assert parse_target_scope(text) == expected


@pytest.mark.parametrize("text", BAD_IDS.values(), ids=BAD_IDS.keys())
def test_bad_ids_are_refused_by_both_parsers(text: str) -> None:
    for parse in (parse_target_scope, parse_registry_id):
        with pytest.raises(ResourceIdError, match="resource ID") as caught:
            parse(text)
        assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("name", ["resource-group", "subscription"])
def test_scopes_wider_than_a_registry_are_not_registry_ids(name: str) -> None:
    text, scope = GOOD_SCOPES[name]
    assert scope.registry_id() is None
    with pytest.raises(ResourceIdError, match="not a container registry resource ID"):
        parse_registry_id(text)


def test_registry_id_str_is_the_canonical_arm_id() -> None:
    registry = parse_registry_id(REGISTRY_ID.lower())
    assert registry == RegistryId(SUB, "rg-prod.eu_1(a)", "contoso01")
    assert str(registry) == (f"/subscriptions/{SUB}/resourceGroups/rg-prod.eu_1(a)"
                             "/providers/Microsoft.ContainerRegistry/registries/contoso01")
    assert parse_target_scope(str(registry)).registry_id() == registry


REGISTRY_IDS = st.builds(
    RegistryId,
    subscription=st.from_regex(r"[0-9a-zA-Z-]{1,64}", fullmatch=True),
    resource_group=st.from_regex(r"[-\w._()]{1,90}", fullmatch=True),
    name=st.from_regex(r"[a-zA-Z0-9]{5,50}", fullmatch=True),
)


@given(REGISTRY_IDS, st.sampled_from(["", "/"]))
def test_str_round_trips_through_the_parser(registry: RegistryId, suffix: str) -> None:
    assert parse_registry_id(str(registry) + suffix) == registry
