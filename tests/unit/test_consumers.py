"""The recipes in docs/consumers.md parse, and use the rotator's own secret names, tags and content types.

Every ```yaml block is loaded with PyYAML and every ```sh block is checked by `bash -n`; then each
recipe is found by what it is (kind, task, key) and compared with the code: `secret_name`, the tag
constants, `DOCKERCONFIG_SUFFIX`, the event type the push signal subscribes to.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with schemathesis (requirements-dev)

from rotator.azure.vault import DOCKERCONFIG_CONTENT_TYPE
from rotator.core.events import HANDLED_EVENT_TYPES
from rotator.core.model import (
    DOCKERCONFIG_SUFFIX,
    SECRET_CONTENT_TYPE,
    TAG_LOGIN_SERVER,
    TAG_SLOT,
    TAG_TOKEN,
    secret_name,
)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "consumers.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(PAGE.read_text()) if lang == language]


def documents() -> list[dict[str, Any]]:
    return [doc for block in blocks("yaml") for doc in yaml.safe_load_all(block) if doc]


def find(predicate: Any) -> dict[str, Any]:
    found = [doc for doc in documents() if predicate(doc)]
    assert len(found) == 1, f"expected one matching recipe, found {len(found)}"
    return found[0]


def of_kind(kind: str) -> dict[str, Any]:
    return find(lambda doc: doc.get("kind") == kind)


def test_the_page_has_every_recipe() -> None:
    assert len(blocks("yaml")) >= 5 and len(blocks("sh")) >= 3
    text = PAGE.read_text()
    for heading in ("## Is this for you?", "External Secrets Operator", "Secrets Store CSI driver",
                    "App Service and Functions", "Container Apps", "GitHub Actions", "Azure Pipelines",
                    "SecretNewVersionCreated", "Terraform or Bicep"):
        assert heading in text, heading


def test_the_stated_contract_is_the_codes() -> None:
    text = PAGE.read_text()
    for fact in (f"`{SECRET_CONTENT_TYPE}`", f"`{DOCKERCONFIG_CONTENT_TYPE}`", f"`{TAG_TOKEN}`",
                 f"`{TAG_LOGIN_SERVER}`", f"`{TAG_SLOT}`", "`acr-<registry>-<token>`",
                 f"`acr-<registry>-<token>{DOCKERCONFIG_SUFFIX}`"):
        assert fact in text, fact


@pytest.mark.parametrize("index", range(len(blocks("yaml"))))
def test_every_yaml_block_parses(index: int) -> None:
    assert list(yaml.safe_load_all(blocks("yaml")[index]))


@pytest.mark.parametrize("index", range(len(blocks("sh"))))
def test_every_shell_block_is_valid_bash(index: int) -> None:
    bash = shutil.which("bash")
    assert bash
    result = subprocess.run([bash, "-n"], input=blocks("sh")[index], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_external_secret_templates_a_docker_config_from_the_password_secret_and_its_tags() -> None:
    external = of_kind("ExternalSecret")["spec"]
    name = secret_name("contosoprod", "aks")
    refs = {item["secretKey"]: item["remoteRef"] for item in external["data"]}
    assert refs["password"] == {"key": name}
    assert refs["username"] == {"key": name, "metadataPolicy": "Fetch", "property": TAG_TOKEN}
    assert refs["server"] == {"key": name, "metadataPolicy": "Fetch", "property": TAG_LOGIN_SERVER}
    template = external["target"]["template"]
    assert template["type"] == "kubernetes.io/dockerconfigjson"
    store = of_kind("SecretStore")["spec"]["provider"]["azurekv"]
    assert external["secretStoreRef"]["name"] == of_kind("SecretStore")["metadata"]["name"]
    assert store["serviceAccountRef"]["name"] == of_kind("ServiceAccount")["metadata"]["name"]
    # Render the template the way ESO's Go templates would for these values: valid JSON in the shape the
    # rotator's own companion secret has (rotator.azure.vault.Vault.publish_dockerconfig).
    values = {"server": "contosoprod.azurecr.io", "username": "aks", "password": "Pa55w0rd+/="}
    rendered = _render(template["data"][".dockerconfigjson"], values)
    entry = json.loads(rendered)["auths"]["contosoprod.azurecr.io"]
    assert entry == {"username": "aks", "password": values["password"],
                     "auth": base64.b64encode(b"aks:" + values["password"].encode()).decode()}


def _render(template: str, values: dict[str, str]) -> str:
    """The two Go template forms the recipe uses: `{{ .name }}` and `{{ printf "%s:%s" .a .b | b64enc }}`."""
    def pair(match: re.Match[str]) -> str:
        text = f"{values[match[1]]}:{values[match[2]]}"
        return base64.b64encode(text.encode()).decode()

    text = re.sub(r'\{\{ printf "%s:%s" \.(\w+) \.(\w+) \| b64enc \}\}', pair, template)
    text = re.sub(r"\{\{ \.(\w+) \}\}", lambda m: values[m[1]], text)
    assert "{{" not in text, text
    return text


def test_csi_driver_syncs_the_companion_secret_into_a_pull_secret() -> None:
    spec = of_kind("SecretProviderClass")["spec"]
    companion = secret_name("contosoprod", "aks") + DOCKERCONFIG_SUFFIX
    (listed,) = yaml.safe_load(spec["parameters"]["objects"])["array"]
    assert yaml.safe_load(listed) == {"objectName": companion, "objectType": "secret"}
    (synced,) = spec["secretObjects"]
    assert synced["type"] == "kubernetes.io/dockerconfigjson"
    assert synced["data"] == [{"objectName": companion, "key": ".dockerconfigjson"}]


def test_app_service_references_the_secret_without_a_version() -> None:
    (script,) = [b for b in blocks("sh") if "DOCKER_REGISTRY_SERVER_PASSWORD" in b]
    assert f"secret={secret_name('contosoprod', 'web')}\n" in script
    assert "@Microsoft.KeyVault(SecretUri=https://$vault.vault.azure.net/secrets/$secret/)" in script
    assert f"tags.\"{TAG_LOGIN_SERVER}\"" in script and f"tags.\"{TAG_TOKEN}\"" in script


def test_container_app_registry_password_is_a_versionless_key_vault_reference() -> None:
    configuration = find(lambda doc: "properties" in doc and "configuration" in doc["properties"])
    configuration = configuration["properties"]["configuration"]
    (secret,) = configuration["secrets"]
    assert secret["keyVaultUrl"].endswith("/secrets/" + secret_name("contosoprod", "api"))
    (registry,) = configuration["registries"]
    assert registry["passwordSecretRef"] == secret["name"] and registry["username"] == "api"


def test_github_actions_uses_oidc_and_the_tags() -> None:
    workflow = find(lambda doc: "jobs" in doc)
    assert workflow["permissions"]["id-token"] == "write"
    (job,) = workflow["jobs"].values()
    assert job["env"]["SECRET"] == secret_name("contosobuild", "ci")
    steps = job["steps"]
    login = next(step for step in steps if str(step.get("uses", "")).startswith("azure/login@"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
    assert "client-secret" not in login["with"] and "creds" not in login["with"]
    script = next(step["run"] for step in steps if "docker login" in step.get("run", ""))
    assert f"tags.\"{TAG_LOGIN_SERVER}\"" in script and f"tags.\"{TAG_TOKEN}\"" in script
    assert "--password-stdin" in script


def test_azure_pipelines_reads_the_secret_by_name_and_passes_it_through_env() -> None:
    pipeline = find(lambda doc: "steps" in doc and "pool" in doc)
    name = secret_name("contosobuild", "ci")
    task = next(step for step in pipeline["steps"] if step.get("task") == "AzureKeyVault@2")
    assert task["inputs"]["SecretsFilter"] == name
    script = next(step for step in pipeline["steps"] if "script" in step)
    assert script["env"]["ACR_PASSWORD"] == f"$({name})"
    assert f"$({name})" not in script["script"] and "--password-stdin" in script["script"]


def test_the_push_signal_subscribes_to_new_versions_of_our_secrets_only() -> None:
    (script,) = [b for b in blocks("sh") if "event-subscription create" in b]
    event = "Microsoft.KeyVault.SecretNewVersionCreated"
    assert f"--included-event-types {event}" in script
    # The rotator itself does not subscribe to it (its own publishing raises it); consumers do.
    assert event not in HANDLED_EVENT_TYPES
    prefix = re.search(r"--subject-begins-with (\S+)", script)
    assert prefix is not None and secret_name("contosoprod", "app").startswith(prefix[1])
    assert "evgt-$vault" in script
    topic_default = "param systemTopicName string = 'evgt-${last(split(keyVaultId, '/'))}'"
    assert topic_default in (PAGE.parents[1] / "infra" / "eventgrid.bicep").read_text()


def test_no_recipe_holds_a_client_secret_or_a_literal_password() -> None:
    for document in documents():
        keys = set(re.findall(r'"([^"]+)": ', json.dumps(document)))
        assert not {"client-secret", "clientSecret", "password"} & keys, document
