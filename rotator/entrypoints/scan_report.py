"""Each scan's record, stored for `GET /api/tokens` and `GET /api/health` (rotator.core.scan_record).

The timer's scan and the CLI's `scan` store it; a dry run does not (it is not what happened). A record that
cannot be stored is an ERROR in the log, never the scan's failure: the work is done (or queued), and the
health check reports the record growing old.
"""

from __future__ import annotations

import logging
from datetime import datetime

from azure.core.exceptions import AzureError

from rotator.azure.errors import describe
from rotator.core.results import Result
from rotator.core.scan_record import ScanRecord, summarize
from rotator.core.work import Source
from rotator.entrypoints.render import status_rows
from rotator.logs import log_event
from rotator.protocols.engine import Engine
from rotator.protocols.fanout import enqueue_scan
from rotator.protocols.scan import ScanPlan, scan_inline


def scan_and_store(engine: Engine, source: Source, enqueue: bool) -> list[Result]:
    """A scan, enqueued (the timer, `scan --enqueue`) or run in this process, then its record stored."""
    started = engine.clock()
    scan, results = enqueue_scan(engine, source=source) if enqueue else scan_inline(engine)
    store_scan(engine, scan, results, started, source=source, mode="enqueue" if enqueue else "inline")
    return results


def store_scan(engine: Engine, scan: ScanPlan, results: list[Result], started: datetime, source: str,
               mode: str) -> ScanRecord:
    """Build the record of a finished scan and replace the stored one with it."""
    summary = summarize(started, engine.clock(), source, mode, [(p.token, p.secret) for p in scan.plans], results)
    record = ScanRecord(summary, status_rows(scan.plans, summary.completed_at), [f.to_json() for f in scan.failures],
                        [o.to_json() for o in scan.orphans])
    try:
        engine.scans.save(record)
    except AzureError as error:
        log_event("scan-record-failed", logging.ERROR, reason=f"the scan's record was not stored: {describe(error)}")
    return record
