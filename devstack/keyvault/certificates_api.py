"""The certificates data plane: import, get, list, versions, update, policy, soft delete.

Each certificate version has a backing secret of the same name and version holding the key
and the chain (managed, read-only through the secrets API), as in Azure.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from devstack.httpbase import Request, Response
from devstack.keyvault.certfiles import CONTENT_TYPES, PKCS12, ImportedCertificate, derived_policy, parse_import
from devstack.keyvault.errors import KeyVaultError, bad_parameter
from devstack.keyvault.model import Attributes, Collection, Deleted, tags_from
from devstack.keyvault.paging import SortedKeys, page
from devstack.keyvault.secrets_api import SecretVersion
from devstack.keyvault.service import KeyVaultService, json_object, object_name, vault_url

_NAME = r"(?P<name>[^/]+)"
_VERSION = r"(?:/(?P<version>[^/]*))?"
_CLIENT_POLICY_KEYS = ("lifetime_actions", "issuer")


@dataclass
class CertificateVersion:
    """The public part of one version; nbf/exp come from the certificate itself."""

    der: bytes
    x5t: str
    attributes: Attributes
    tags: dict[str, str] | None = None


@dataclass
class Policy:
    """The certificate-wide management policy, with its own created/updated stamps."""

    body: dict[str, Any]
    attributes: Attributes

    def to_json(self, vault: str, name: str) -> dict[str, Any]:
        stamps = {"enabled": self.attributes.enabled, "created": self.attributes.created,
                  "updated": self.attributes.updated}
        return {"id": f"{vault}/certificates/{name}/policy", **self.body, "attributes": stamps}

    @property
    def content_type(self) -> str:
        return str(self.body.get("secret_props", {}).get("contentType") or PKCS12)


def _ids(vault: str, name: str, version: str) -> dict[str, str]:
    return {"id": f"{vault}/certificates/{name}/{version}", "kid": f"{vault}/keys/{name}/{version}",
            "sid": f"{vault}/secrets/{name}/{version}"}


def _public(certificate: CertificateVersion) -> dict[str, Any]:
    body: dict[str, Any] = {"x5t": certificate.x5t, "attributes": certificate.attributes.to_json()}
    if certificate.tags is not None:
        body["tags"] = certificate.tags
    return body


def _requested_policy(body: dict[str, Any]) -> dict[str, Any]:
    policy = body.get("policy")
    if policy is None:
        return {}
    if not isinstance(policy, dict):
        raise bad_parameter("'policy' must be a JSON object.")
    return policy


def _requested_content_type(policy: dict[str, Any], current: Policy | None) -> str:
    requested = (policy.get("secret_props") or {}).get("contentType")
    if requested is None:
        return current.content_type if current else PKCS12
    if requested not in CONTENT_TYPES:
        raise bad_parameter(f"Unsupported content type {requested!r}: use one of {', '.join(CONTENT_TYPES)}.")
    return str(requested)


def _merged_policy(imported: ImportedCertificate, content_type: str, requested: dict[str, Any]) -> dict[str, Any]:
    """Derived from the certificate; the client may choose lifetime actions, issuer and key export/reuse."""
    policy = derived_policy(imported, content_type)
    policy.update({key: requested[key] for key in _CLIENT_POLICY_KEYS if requested.get(key)})
    key_choices = requested.get("key_props") or {}
    policy["key_props"].update({k: key_choices[k] for k in ("exportable", "reuse_key") if k in key_choices})
    return policy


class CertificatesApi:
    """Routes of /certificates and /deletedcertificates; writes backing secrets into `secrets`."""

    def __init__(self, service: KeyVaultService, secrets: Collection[SecretVersion]) -> None:
        self.service = service
        self.secrets = secrets
        self.store: Collection[CertificateVersion] = Collection("certificate", lambda: service.soft_delete_seconds)
        self.policies: dict[str, Policy] = {}

    def register(self) -> None:
        routes = [
            ("GET", r"/certificates", "certificates.list", self.list_certificates),
            ("POST", rf"/certificates/{_NAME}/import", "certificates.import", self.import_certificate),
            ("GET", rf"/certificates/{_NAME}/versions", "certificates.list_versions", self.list_versions),
            ("GET", rf"/certificates/{_NAME}/policy", "certificates.get_policy", self.get_policy),
            ("PATCH", rf"/certificates/{_NAME}/policy", "certificates.update_policy", self.update_policy),
            ("DELETE", rf"/certificates/{_NAME}", "certificates.delete", self.delete),
            ("GET", rf"/certificates/{_NAME}{_VERSION}", "certificates.get", self.get),
            ("PATCH", rf"/certificates/{_NAME}{_VERSION}", "certificates.update", self.update),
            ("GET", r"/deletedcertificates", "certificates.list_deleted", self.list_deleted),
            ("GET", rf"/deletedcertificates/{_NAME}", "certificates.get_deleted", self.get_deleted),
            ("DELETE", rf"/deletedcertificates/{_NAME}", "certificates.purge", self.purge),
            ("POST", rf"/deletedcertificates/{_NAME}/recover", "certificates.recover", self.recover),
        ]
        for method, pattern, operation, handler in routes:
            self.service.route(method, pattern, operation)(handler)

    # -- rendering -----------------------------------------------------------------------------
    def _bundle(self, vault: str, name: str, version: str, certificate: CertificateVersion) -> dict[str, Any]:
        """A CertificateBundle: ids, public certificate, attributes, policy, tags."""
        return {**_ids(vault, name, version), **_public(certificate),
                "cer": base64.b64encode(certificate.der).decode(),
                "policy": self.policies[name.lower()].to_json(vault, name)}

    def _deleted_bundle(self, vault: str, gone: Deleted[CertificateVersion]) -> dict[str, Any]:
        version, latest = gone.item.latest()
        return {**self._bundle(vault, gone.item.name, version, latest),
                **gone.deleted_json(vault, "deletedcertificates")}

    # -- operations ----------------------------------------------------------------------------
    def import_certificate(self, request: Request) -> Response:
        name = object_name(request)
        body = json_object(request)
        value, password = body.get("value"), body.get("pwd")
        if not isinstance(value, str) or not (password is None or isinstance(password, str)):
            raise bad_parameter("Property 'value' is required and 'pwd' must be a string.")
        requested = _requested_policy(body)
        with self.service.lock:
            content_type = _requested_content_type(requested, self.policies.get(name.lower()))
        imported = parse_import(value, content_type, password)
        certificate = self._new_version(imported, body)
        with self.service.lock:
            version = self._store(name, imported, certificate, _merged_policy(imported, content_type, requested))
            item, _, _ = self.store.find(name, version)
            return Response(200, self._bundle(vault_url(request), item.name, version, certificate))

    def _new_version(self, imported: ImportedCertificate, body: dict[str, Any]) -> CertificateVersion:
        now = self.service.now_seconds()
        attributes = Attributes(created=now, updated=now,
                                nbf=int(imported.leaf.not_valid_before_utc.timestamp()),
                                exp=int(imported.leaf.not_valid_after_utc.timestamp()))
        requested = body.get("attributes") or {}
        attributes.apply({"enabled": requested.get("enabled")} if isinstance(requested, dict) else requested)
        return CertificateVersion(imported.der, imported.x5t(), attributes, tags_from(body))

    def _store(self, name: str, imported: ImportedCertificate, certificate: CertificateVersion,
               policy_body: dict[str, Any]) -> str:
        """Add the version, its backing secret (same version id) and the policy. The caller holds the lock."""
        now = self.service.now()
        self._refuse_taken_name(name, now)
        _, version = self.store.add_version(name, certificate, now)
        content_type = policy_body["secret_props"]["contentType"]
        # The backing secret shares the attributes object: disabling the certificate disables its secret.
        secret = SecretVersion(imported.backing_secret(content_type), certificate.attributes, content_type,
                               certificate.tags, managed=True)
        self.secrets.put_version(name, version, secret, now)
        stamp = certificate.attributes.created
        policy = self.policies.setdefault(name.lower(), Policy({}, Attributes(created=stamp, updated=stamp)))
        policy.body, policy.attributes.updated = policy_body, stamp
        return version

    def _refuse_taken_name(self, name: str, now: float) -> None:
        """Check before writing anything: a deleted certificate or secret, or a plain secret holding the name."""
        self.store.refuse_if_deleted(name, now)
        self.secrets.refuse_if_deleted(name, now)
        existing = self.secrets.live.get(name.lower())
        if existing is not None and not existing.latest()[1].managed:
            raise KeyVaultError(409, "Conflict", f"A secret named {name} already exists and is not managed by a "
                                "certificate; a certificate cannot take its name.")

    def get(self, request: Request) -> Response:
        name = object_name(request)
        with self.service.lock:
            item, version, certificate = self.store.find(name, request.params.get("version", ""))
            return Response(200, self._bundle(vault_url(request), item.name, version, certificate))

    def update(self, request: Request) -> Response:
        """Tags and `enabled` of one version (the backing secret follows); a policy in the body too."""
        name = object_name(request)
        body = json_object(request)
        tags = tags_from(body)
        with self.service.lock:
            item, version, certificate = self.store.find(name, request.params.get("version", ""))
            raw = body.get("attributes")
            certificate.attributes.apply({"enabled": raw.get("enabled")} if isinstance(raw, dict) else raw)
            certificate.attributes.updated = self.service.now_seconds()
            if tags is not None:
                certificate.tags = tags
            if body.get("policy"):
                self._patch_policy(name, _requested_policy(body))
            return Response(200, self._bundle(vault_url(request), item.name, version, certificate))

    def list_certificates(self, request: Request) -> Response:
        vault = vault_url(request)

        def render(key: str) -> dict[str, Any]:
            item = self.store.live[key]
            return {"id": f"{vault}/certificates/{item.name}", **_public(item.latest()[1])}

        with self.service.lock:
            return Response(200, page(request, vault, self.store.live_index, render))

    def list_versions(self, request: Request) -> Response:
        name = object_name(request)
        vault = vault_url(request)
        with self.service.lock:
            item, _, _ = self.store.find(name)
            return Response(200, page(request, vault, SortedKeys(item.versions), lambda version: {
                "id": f"{vault}/certificates/{item.name}/{version}", **_public(item.versions[version])}))

    def get_policy(self, request: Request) -> Response:
        name = object_name(request)
        with self.service.lock:
            item, _, _ = self.store.find(name)
            return Response(200, self.policies[name.lower()].to_json(vault_url(request), item.name))

    def update_policy(self, request: Request) -> Response:
        name = object_name(request)
        requested = json_object(request)
        with self.service.lock:
            item, _, _ = self.store.find(name)
            self._patch_policy(name, requested)
            return Response(200, self.policies[name.lower()].to_json(vault_url(request), item.name))

    def _patch_policy(self, name: str, requested: dict[str, Any]) -> None:
        policy = self.policies[name.lower()]
        if (requested.get("secret_props") or {}).get("contentType") not in (None, *CONTENT_TYPES):
            raise bad_parameter("Unsupported content type in 'secret_props'.")
        policy.body.update({k: v for k, v in requested.items() if k not in ("id", "attributes") and v is not None})
        policy.attributes.updated = self.service.now_seconds()

    def delete(self, request: Request) -> Response:
        name = object_name(request)
        with self.service.lock:
            deleted_date, now = self.service.now_seconds(), self.service.now()
            gone = self.store.delete(name, deleted_date, now)
            self.secrets.delete(name, deleted_date, now)
            return Response(200, self._deleted_bundle(vault_url(request), gone))

    def get_deleted(self, request: Request) -> Response:
        name = object_name(request)
        with self.service.lock:
            gone = self.store.find_deleted(name, self.service.now())
            return Response(200, self._deleted_bundle(vault_url(request), gone))

    def list_deleted(self, request: Request) -> Response:
        vault = vault_url(request)
        now = self.service.now()

        def render(key: str) -> dict[str, Any]:
            gone = self.store.deleted[key]
            return {"id": f"{vault}/certificates/{gone.item.name}", **_public(gone.item.latest()[1]),
                    **gone.deleted_json(vault, "deletedcertificates")}

        with self.service.lock:
            return Response(200, page(request, vault, self.store.deleted_index, render,
                                      accept=lambda key: self.store.ready(self.store.deleted[key], now)))

    def purge(self, request: Request) -> Response:
        name = object_name(request)
        with self.service.lock:
            now = self.service.now()
            self.store.purge(name, now)
            self.secrets.purge(name, now)
            del self.policies[name.lower()]
        return Response(204)

    def recover(self, request: Request) -> Response:
        name = object_name(request)
        with self.service.lock:
            now = self.service.now()
            item = self.store.recover(name, now)
            self.secrets.recover(name, now)
            version, latest = item.latest()
            return Response(200, self._bundle(vault_url(request), item.name, version, latest))
