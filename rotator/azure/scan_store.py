"""The last scan's record, one gzip'd JSON blob in the lease container of AzureWebJobsStorage.

Written whole by each scan (a blob upload replaces it atomically, so readers see one scan or the next,
never a mix); the summary also travels as the blob's metadata, so `GET /api/health` reads it with one
properties call and never downloads the token list. No secret is in either: status rows hold names,
slots, dates and reasons only. The blob name cannot be a token's lease blob (those are
`<subscription>/<group>/<registry>/<token>`).
"""

from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceNotFoundError

from rotator.azure.lease import ensure_container
from rotator.core.scan_record import RecordError, ScanRecord, ScanSummary

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

RECORD_BLOB = "last-scan.json.gz"
SUMMARY_METADATA = "summary"


class ScanStore:
    """Reads and replaces the record in the lease container (the container is created on first write)."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    def save(self, record: ScanRecord) -> None:
        from azure.storage.blob import ContentSettings

        body = gzip.compress(json.dumps(record.to_json(), separators=(",", ":")).encode("utf-8"))
        metadata = {SUMMARY_METADATA: json.dumps(record.summary.to_json(), separators=(",", ":"), ensure_ascii=True)}
        blob = self._container.get_blob_client(RECORD_BLOB)
        settings = ContentSettings(content_type="application/json", content_encoding="gzip")
        try:
            blob.upload_blob(body, overwrite=True, metadata=metadata, content_settings=settings)
        except ResourceNotFoundError:  # the container does not exist yet (a new deployment's first scan)
            ensure_container(self._container)
            blob.upload_blob(body, overwrite=True, metadata=metadata, content_settings=settings)

    def summary(self) -> ScanSummary | None:
        """The last scan's summary (one properties call), None before the first scan."""
        try:
            properties = self._container.get_blob_client(RECORD_BLOB).get_blob_properties()
        except ResourceNotFoundError:
            return None
        text = (properties.metadata or {}).get(SUMMARY_METADATA)
        if text is None:
            raise RecordError(f"the blob {RECORD_BLOB} carries no scan summary")
        try:
            return ScanSummary.from_json(json.loads(text))
        except ValueError as error:
            raise RecordError(f"the stored scan summary cannot be read: {error}") from None

    def load(self) -> ScanRecord | None:
        """The whole record (one download), None before the first scan."""
        try:
            body = self._container.get_blob_client(RECORD_BLOB).download_blob(decompress=False).readall()
        except ResourceNotFoundError:
            return None
        try:
            return ScanRecord.from_json(json.loads(gzip.decompress(body)))
        except (OSError, ValueError) as error:
            raise RecordError(f"the stored scan record cannot be read: {error}") from None
