"""Tables. Identity uniqueness lives here, in constraints, so no race can give one identity to
two contacts; JSON columns hold what admins extend (canonical fields, settings, details)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would otherwise hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")
Blob = LargeBinary().with_variant(BYTEA(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Connection(Base):
    __tablename__ = "connections"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    connector: Mapped[str] = mapped_column(String(64))
    webhook_secrets: Mapped[list[str]] = mapped_column(Json, default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    credentials: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    status: Mapped[str] = mapped_column(String(32), default="active")
    status_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboxEvent(Base):
    """A delivery exactly as received; the source of truth for everything a worker does."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("connection_id", "delivery_key", name="uq_inbox_delivery"),
        Index("ix_inbox_claim", "status", "available_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"))
    delivery_key: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(128))
    headers: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    body: Mapped[bytes] = mapped_column(Blob)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="accepted")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(Json)


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ContactMerge(Base):
    """A merge an admin (or a rule) made, with both records as they were: undo restores them."""

    __tablename__ = "contact_merges"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    winner_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    loser_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(Json)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsentEvent(Base):
    """Every change of a contact's consent on a channel, kept for proof (Art. 7(1) GDPR)."""

    __tablename__ = "consent_history"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(16))
    lawful_basis: Mapped[str | None] = mapped_column(String(32))
    double_opt_in: Mapped[bool | None] = mapped_column()
    consent_at: Mapped[str | None] = mapped_column(String(40))
    connection: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Erasure(Base):
    """An Art. 17 erasure: what was removed where, and what is still owed by which tool."""

    __tablename__ = "erasures"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    receipt: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    pending: Mapped[list[Any]] = mapped_column(Json, default=list)  # [connection, external id]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Tombstone(Base):
    """A salted hash of an erased person's identifier: later deliveries for them are dropped."""

    __tablename__ = "tombstones"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erasure_id: Mapped[int] = mapped_column(ForeignKey("erasures.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HubState(Base):
    """Values the hub generates once and every process must share (the tombstone salt)."""

    __tablename__ = "hub_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SurvivorshipRule(Base):
    """How one field (or group: "address", "consent.email") chooses between sources."""

    __tablename__ = "survivorship_rules"
    field: Mapped[str] = mapped_column(String(128), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(32))
    sources: Mapped[list[str]] = mapped_column(Json, default=list)
    conflict_window_seconds: Mapped[int | None] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactIdentity(Base):
    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("kind", "scope", "value", name="uq_identity"),
                      Index("ix_contact_identities_value", "value"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FieldProvenance(Base):
    __tablename__ = "field_provenance"
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    field: Mapped[str] = mapped_column(String(128), primary_key=True)
    connection: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(String(64))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    mapping_version: Mapped[str | None] = mapped_column(String(200))


class Flag(Base):
    """Something an admin should look at: a possible duplicate, a conflict, a rule broken."""

    __tablename__ = "flags"
    __table_args__ = (Index("ix_flags_kind_status", "kind", "status"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    other_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity_type", "entity_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class MappingVersion(Base):
    """An admin's mapping document for one connection, object and direction, numbered 1, 2...
    Never changed once stored: a change is a new version, so history and rollback are exact."""

    __tablename__ = "mapping_versions"
    __table_args__ = (UniqueConstraint("connection_id", "object_type", "direction", "number",
                                       name="uq_mapping_version"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"))
    object_type: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(16))
    number: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    author: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MappingActivation(Base):
    """Which version is live, as an append-only log: the newest row per connection, object and
    direction is the active one (version_id NULL: the shipped file). Its max(id) tells every
    process cheaply whether its cached mappings are stale."""

    __tablename__ = "mapping_activations"
    __table_args__ = (Index("ix_mapping_activation_key", "connection_id", "object_type",
                            "direction"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"))
    object_type: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(16))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("mapping_versions.id"))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomFieldRow(Base):
    """A custom canonical field an admin declared (`custom.<name>`); only ever added."""

    __tablename__ = "custom_fields"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(70), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200))
    choices: Mapped[list[str]] = mapped_column(Json, default=list)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SyncRun(Base):
    """One sync of one connection: pull its streams, then push its changed golden records.

    Counters are incremented in the transaction that commits the records they count, so a run
    that is killed and resumed counts each record once. `epoch` fences off the jobs of an
    earlier attempt when the watchdog resumes a run whose workers died."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_connection_id", "connection", "id"),
                      Index("ix_sync_runs_status", "status"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    connection: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24), default="running")
    phase: Mapped[str] = mapped_column(String(16), default="pull")
    full: Mapped[bool] = mapped_column(default=False)
    trigger: Mapped[str] = mapped_column(String(32), default="cli")
    epoch: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    records_read: Mapped[int] = mapped_column(Integer, default=0)
    records_done: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    healed: Mapped[int] = mapped_column(Integer, default=0)
    pushed: Mapped[int] = mapped_column(Integer, default=0)
    push_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    push_rejected: Mapped[int] = mapped_column(Integer, default=0)
    push_blocked: Mapped[int] = mapped_column(Integer, default=0)
    withdrawals: Mapped[int] = mapped_column(Integer, default=0)
    push_slices: Mapped[int] = mapped_column(Integer, default=0)
    push_slices_done: Mapped[int] = mapped_column(Integer, default=0)
    push_complete: Mapped[bool] = mapped_column(default=False)  # the last slice was handed out
    errors: Mapped[list[Any]] = mapped_column(Json, default=list)


class SyncRunStream(Base):
    """One stream of a run: where its reading stands (the next page's request, committed with
    the page before it) and what it has read so far."""

    __tablename__ = "sync_run_streams"
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="reading")
    next_params: Mapped[dict[str, Any] | None] = mapped_column(Json)
    start_value: Mapped[str | None] = mapped_column(String(255))
    start_ids: Mapped[list[str]] = mapped_column(Json, default=list)
    max_value: Mapped[str | None] = mapped_column(String(255))
    max_ids: Mapped[list[str]] = mapped_column(Json, default=list)
    passes: Mapped[int] = mapped_column(Integer, default=1)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    expected: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class SyncChunk(Base):
    """A few consecutive pages read together and committed together (any worker may take it);
    `params` is the request of its first page, so a lost chunk can be read again."""

    __tablename__ = "sync_chunks"
    __table_args__ = (UniqueConstraint("run_id", "stream", "seq", name="uq_sync_chunk"),
                      Index("ix_sync_chunks_run_status", "run_id", "status"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"))
    stream: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    start_value: Mapped[str | None] = mapped_column(String(255))  # its pass's start bookmark
    start_ids: Mapped[list[str]] = mapped_column(Json, default=list)
    pages: Mapped[int] = mapped_column(Integer, default=1)
    records: Mapped[int] = mapped_column(Integer, default=0)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class SyncBookmark(Base):
    """Where the next incremental read of a stream starts: the highest replication value
    committed, with the ids already read at exactly that value (the cursor is inclusive)."""

    __tablename__ = "sync_bookmarks"
    connection: Mapped[str] = mapped_column(String(64), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str | None] = mapped_column(String(255))
    ids: Mapped[list[str]] = mapped_column(Json, default=list)
    run_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PushState(Base):
    """What the hub last wrote of one contact into one tool: the payload's hash (an unchanged
    payload is not sent again, so a push coming back as a change cannot loop), the consent it
    carried, and for a refused record the vendor's reason until a later run gets it through."""

    __tablename__ = "sync_push_state"
    __table_args__ = (Index("ix_sync_push_state_status", "connection", "status"),)
    connection: Mapped[str] = mapped_column(String(64), primary_key=True)
    contact_id: Mapped[int] = mapped_column(Id, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="ok")
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    consent: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
