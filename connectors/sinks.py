"""Pushing: a sink writes golden records into a tool, one by one or through a batch endpoint.

The outbound mapping has already turned each contact into the vendor's payload; a sink only
knows the endpoint. Results are per record, so one refused record is dead-lettered with the
vendor's reason while the others go through.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from connectors.http import SkippedError, VendorHttp
from hub.domain.errors import RejectedRecordError
from hub.redaction import redact


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


@dataclass(frozen=True)
class OutboundRecord:
    hub_id: int
    external_id: str | None  # the contact's id in this tool, when the hub knows it
    payload: dict[str, Any]


@dataclass(frozen=True)
class PushResult:
    hub_id: int
    outcome: Outcome
    external_id: str | None = None
    reason: str | None = None


class Sink:
    """Subclasses implement `upsert_batch` (and `delete` when the tool can delete)."""

    object_type: str = "contact"
    batch_size: int = 1
    can_delete: bool = False

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        raise NotImplementedError

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        raise NotImplementedError

    def push(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        """All records in the sink's batch size; a refused batch is retried one by one."""
        results: list[PushResult] = []
        for start in range(0, len(records), self.batch_size):
            chunk = records[start:start + self.batch_size]
            try:
                results.extend(self.upsert_batch(http, chunk))
            except RejectedRecordError as exc:
                if len(chunk) == 1:
                    results.append(PushResult(chunk[0].hub_id, Outcome.REJECTED,
                                              chunk[0].external_id, redact(exc.detail)))
                else:
                    results.extend(self.push_one_by_one(http, chunk))
        return results

    def push_one_by_one(self, http: VendorHttp, records: list[OutboundRecord]
                        ) -> list[PushResult]:
        results = []
        for record in records:
            try:
                results.extend(self.upsert_batch(http, [record]))
            except RejectedRecordError as exc:
                results.append(PushResult(record.hub_id, Outcome.REJECTED, record.external_id,
                                          redact(exc.detail)))
        return results

    def remove(self, http: VendorHttp, hub_id: int, external_id: str) -> PushResult:
        """Delete, treating "already gone" as done."""
        try:
            return self.delete(http, external_id)
        except SkippedError:
            return PushResult(hub_id, Outcome.DELETED, external_id, "already gone")
