"""The canonical contact: the fields every tool is mapped into, and how each one merges.

Fields are flat dotted names ("address.city", "consent.email.status") so that mappings,
provenance and survivorship all speak about one field at a time. A field belongs to a group
when its values only make sense together (an address, one channel's consent): such a group is
replaced as a whole, never stitched together from two sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class FieldType(StrEnum):
    STRING = "string"
    EMAIL = "email"
    PHONE = "phone"
    COUNTRY = "country"
    DATETIME = "datetime"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CURRENCY = "currency"
    STRING_LIST = "string_list"
    ENUM = "enum"


class MergeStrategy(StrEnum):
    LATEST = "latest"  # the most recently observed non-empty value wins
    EARLIEST = "earliest"  # the smallest value wins (first order date)
    GREATEST = "greatest"  # the largest value wins (last order date)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    strategy: MergeStrategy = MergeStrategy.LATEST
    group: str | None = None
    choices: tuple[str, ...] = ()


CONSENT_CHANNELS = ("email", "sms", "phone")
CONSENT_STATUSES = ("granted", "denied", "withdrawn", "unknown")
LAWFUL_BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)
# Fields that identify a person; they are kept as identities, not as plain values.
IDENTITY_FIELDS = ("email", "phone")


def _specs() -> dict[str, FieldSpec]:
    s = FieldType
    plain: list[tuple[str, FieldType]] = [
        ("email", s.EMAIL),
        ("phone", s.PHONE),
        ("first_name", s.STRING),
        ("last_name", s.STRING),
        ("full_name", s.STRING),
        ("company", s.STRING),
        ("job_title", s.STRING),
        ("lifecycle.stage", s.STRING),
        ("lifecycle.lead_source", s.STRING),
        ("lifecycle.owner", s.STRING),
        ("tags", s.STRING_LIST),
        ("commerce.order_count", s.INTEGER),
        ("commerce.total_spent", s.NUMBER),
        ("commerce.currency", s.CURRENCY),
        ("scheduling.last_booking_at", s.DATETIME),
        ("scheduling.next_booking_at", s.DATETIME),
        ("finance.erp_customer_id", s.STRING),
        ("finance.balance", s.NUMBER),
        ("finance.credit_status", s.STRING),
        ("notes", s.STRING),
    ]
    specs = {name: FieldSpec(name, ftype) for name, ftype in plain}
    for part in ("line1", "line2", "city", "region", "postal_code"):
        specs[f"address.{part}"] = FieldSpec(f"address.{part}", s.STRING, group="address")
    specs["address.country"] = FieldSpec("address.country", s.COUNTRY, group="address")
    specs["email_status"] = FieldSpec(
        "email_status", s.ENUM, choices=("deliverable", "undeliverable", "unknown"))
    specs["commerce.first_order_at"] = FieldSpec(
        "commerce.first_order_at", s.DATETIME, MergeStrategy.EARLIEST
    )
    specs["commerce.last_order_at"] = FieldSpec(
        "commerce.last_order_at", s.DATETIME, MergeStrategy.GREATEST
    )
    for channel in CONSENT_CHANNELS:
        group = f"consent.{channel}"
        specs[f"{group}.status"] = FieldSpec(
            f"{group}.status", s.ENUM, group=group, choices=CONSENT_STATUSES
        )
        specs[f"{group}.lawful_basis"] = FieldSpec(
            f"{group}.lawful_basis", s.ENUM, group=group, choices=LAWFUL_BASES
        )
        specs[f"{group}.double_opt_in"] = FieldSpec(
            f"{group}.double_opt_in", s.BOOLEAN, group=group
        )
        specs[f"{group}.at"] = FieldSpec(f"{group}.at", s.DATETIME, group=group)
    return specs


CANONICAL_FIELDS: dict[str, FieldSpec] = _specs()


def is_empty(value: Any) -> bool:
    """Empty values never overwrite filled ones; this is what counts as empty."""
    return value is None or value == "" or value == [] or value == {}


@dataclass(frozen=True)
class Provenance:
    """Where a field's current value came from."""

    connection: str
    event_id: str | None
    observed_at: datetime
    mapping_version: str | None = None


@dataclass
class CanonicalRecord:
    """One source record after mapping: canonical fields plus who said it and when.

    observed_at is the time the source says the data was true (its own updated_at or the
    event time), not when we received it: out-of-order deliveries are judged by it.
    """

    connection: str
    object_type: str
    external_id: str | None
    observed_at: datetime
    event_id: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    mapping_version: str | None = None
    problems: list[str] = field(default_factory=list)
    previous_external_id: str | None = None  # the id this person had in the tool before

    def provenance(self) -> Provenance:
        return Provenance(self.connection, self.event_id, self.observed_at, self.mapping_version)
