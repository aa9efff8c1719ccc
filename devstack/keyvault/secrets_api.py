"""The secrets data plane: set, get, update, list, versions, soft delete, recover and purge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devstack.httpbase import Request, Response
from devstack.keyvault.errors import bad_parameter, disabled, managed_by_key_vault
from devstack.keyvault.model import Attributes, Collection, Deleted, Versioned, content_type_from, tags_from
from devstack.keyvault.paging import SortedKeys, page
from devstack.keyvault.service import KeyVaultService, json_object, object_name, vault_url

MAX_VALUE_BYTES = 25 * 1024
_NAME = r"(?P<name>[^/]+)"
_VERSION = r"(?:/(?P<version>[^/]*))?"


@dataclass
class SecretVersion:
    """One secret version. `managed` marks the backing secret of a certificate (it has a key id)."""

    value: str
    attributes: Attributes
    content_type: str | None = None
    tags: dict[str, str] | None = None
    managed: bool = False


def secret_json(vault: str, name: str, version: str, secret: SecretVersion, with_value: bool) -> dict[str, Any]:
    """A SecretBundle; values only travel on set and get, as in Azure."""
    body: dict[str, Any] = {"id": f"{vault}/secrets/{name}/{version}", "attributes": secret.attributes.to_json()}
    if with_value:
        body["value"] = secret.value
    body.update(_common(secret))
    if secret.managed:
        body["kid"] = f"{vault}/keys/{name}/{version}"
    return body


def _item_json(secret_id: str, secret: SecretVersion) -> dict[str, Any]:
    """A SecretItem of a list: no value, no key id."""
    return {"id": secret_id, "attributes": secret.attributes.to_json(), **_common(secret)}


def _common(secret: SecretVersion) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if secret.content_type is not None:
        body["contentType"] = secret.content_type
    if secret.tags is not None:
        body["tags"] = secret.tags
    if secret.managed:
        body["managed"] = True
    return body


def _deleted_json(vault: str, gone: Deleted[SecretVersion]) -> dict[str, Any]:
    version, latest = gone.item.latest()
    return {**secret_json(vault, gone.item.name, version, latest, with_value=False),
            **gone.deleted_json(vault, "deletedsecrets")}


def _value_from(body: dict[str, Any]) -> str:
    value = body.get("value")
    if not isinstance(value, str):
        raise bad_parameter("Property 'value' is required and must be a string.")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise bad_parameter(f"The secret value is {len(value.encode())} bytes; the maximum is {MAX_VALUE_BYTES}.")
    return value


class SecretsApi:
    """Routes of /secrets and /deletedsecrets over one in-memory collection."""

    def __init__(self, service: KeyVaultService, store: Collection[SecretVersion]) -> None:
        self.service = service
        self.store = store

    def register(self) -> None:
        routes = [
            ("GET", r"/secrets", "secrets.list", self.list_secrets),
            ("GET", rf"/secrets/{_NAME}/versions", "secrets.list_versions", self.list_versions),
            ("PUT", rf"/secrets/{_NAME}", "secrets.set", self.set_secret),
            ("DELETE", rf"/secrets/{_NAME}", "secrets.delete", self.delete),
            ("GET", rf"/secrets/{_NAME}{_VERSION}", "secrets.get", self.get),
            ("PATCH", rf"/secrets/{_NAME}{_VERSION}", "secrets.update", self.update),
            ("GET", r"/deletedsecrets", "secrets.list_deleted", self.list_deleted),
            ("GET", rf"/deletedsecrets/{_NAME}", "secrets.get_deleted", self.get_deleted),
            ("DELETE", rf"/deletedsecrets/{_NAME}", "secrets.purge", self.purge),
            ("POST", rf"/deletedsecrets/{_NAME}/recover", "secrets.recover", self.recover),
        ]
        for method, pattern, operation, handler in routes:
            self.service.route(method, pattern, operation)(handler)

    def set_secret(self, request: Request) -> Response:
        name = object_name(request)
        body = json_object(request)
        now = self.service.now_seconds()
        secret = SecretVersion(_value_from(body), Attributes(created=now, updated=now),
                               content_type_from(body), tags_from(body))
        secret.attributes.apply(body.get("attributes"))
        with self.service.lock:
            self._refuse_if_managed(name, "set")
            item, version = self.store.add_version(name, secret, self.service.now())
        return Response(200, secret_json(vault_url(request), item.name, version, secret, with_value=True))

    def get(self, request: Request) -> Response:
        name = object_name(request)
        with self.service.lock:
            item, version, secret = self.store.find(name, request.params.get("version", ""))
            if not secret.attributes.enabled:
                raise disabled("secret", "get")
            return Response(200, secret_json(vault_url(request), item.name, version, secret, with_value=True))

    def update(self, request: Request) -> Response:
        name = object_name(request)
        body = json_object(request)
        content_type, tags = content_type_from(body), tags_from(body)
        with self.service.lock:
            item, version, secret = self.store.find(name, request.params.get("version", ""))
            secret.attributes.apply(body.get("attributes"))
            secret.attributes.updated = self.service.now_seconds()
            if content_type is not None:
                secret.content_type = content_type
            if tags is not None:
                secret.tags = tags
            return Response(200, secret_json(vault_url(request), item.name, version, secret, with_value=False))

    def list_secrets(self, request: Request) -> Response:
        vault = vault_url(request)

        def render(key: str) -> dict[str, Any]:
            item = self.store.live[key]
            return _item_json(f"{vault}/secrets/{item.name}", item.latest()[1])

        with self.service.lock:
            return Response(200, page(request, vault, self.store.live_index, render))

    def list_versions(self, request: Request) -> Response:
        name = object_name(request)
        vault = vault_url(request)
        with self.service.lock:
            item, _, _ = self.store.find(name)
            return Response(200, page(request, vault, SortedKeys(item.versions), lambda version: _item_json(
                f"{vault}/secrets/{item.name}/{version}", item.versions[version])))

    def delete(self, request: Request) -> Response:
        name = object_name(request)
        with self.service.lock:
            self._refuse_if_managed(name, "delete")
            gone = self.store.delete(name, self.service.now_seconds(), self.service.now())
            return Response(200, _deleted_json(vault_url(request), gone))

    def get_deleted(self, request: Request) -> Response:
        name = object_name(request)
        with self.service.lock:
            return Response(200, _deleted_json(vault_url(request), self.store.find_deleted(name, self.service.now())))

    def list_deleted(self, request: Request) -> Response:
        vault = vault_url(request)
        now = self.service.now()

        def render(key: str) -> dict[str, Any]:
            gone = self.store.deleted[key]
            return {**_item_json(f"{vault}/secrets/{gone.item.name}", gone.item.latest()[1]),
                    **gone.deleted_json(vault, "deletedsecrets")}

        with self.service.lock:
            return Response(200, page(request, vault, self.store.deleted_index, render,
                                      accept=lambda key: self.store.ready(self.store.deleted[key], now)))

    def purge(self, request: Request) -> Response:
        name = object_name(request)
        with self.service.lock:
            self._refuse_if_managed(name, "purge", deleted=True)
            self.store.purge(name, self.service.now())
        return Response(204)

    def recover(self, request: Request) -> Response:
        name = object_name(request)
        with self.service.lock:
            self._refuse_if_managed(name, "recover", deleted=True)
            item: Versioned[SecretVersion] = self.store.recover(name, self.service.now())
            version, latest = item.latest()
            return Response(200, secret_json(vault_url(request), item.name, version, latest, with_value=False))

    def _refuse_if_managed(self, name: str, operation: str, deleted: bool = False) -> None:
        """A certificate's backing secret lives and dies with the certificate."""
        if deleted:
            gone = self.store.deleted.get(name.lower())
            item = gone.item if gone else None
        else:
            item = self.store.live.get(name.lower())
        if item is not None and item.latest()[1].managed:
            raise managed_by_key_vault(operation)
