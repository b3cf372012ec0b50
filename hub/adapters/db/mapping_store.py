"""Mapping versions, their activations and custom fields in SQL; the per-connection store.

An admin's mapping is stored as numbered, immutable versions per connection, object and
direction. Which one is live is an append-only activation log (the newest row wins; no version
means the shipped file in mappings/). Every process caches compiled mappings and checks at most
every MAPPING_CACHE_SECONDS whether the log or the custom fields grew: one tiny query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from hub.adapters.db.admin import audit
from hub.adapters.db.dialect import one_of
from hub.adapters.db.models import Connection, CustomFieldRow, MappingActivation, MappingVersion
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.contact import CANONICAL_FIELDS, FieldSpec
from hub.domain.custom_fields import CustomField, specs_of
from hub.domain.errors import ConflictError, NotFoundError
from hub.domain.mapping import Mapping, OutboundMapping, compile_mapping, compile_outbound

MAPPING_CACHE_SECONDS = 2.0  # an activation reaches every process within this many seconds
V = cast(Table, MappingVersion.__table__)
A = cast(Table, MappingActivation.__table__)
CF = cast(Table, CustomFieldRow.__table__)
CONN = cast(Table, Connection.__table__)
DIRECTIONS = ("inbound", "outbound")


def version_label(connection: str, object_type: str, direction: str, number: int) -> str:
    """How provenance and the API name a stored version: shop/customer/v3."""
    middle = "" if direction == "inbound" else f"{direction}/"
    return f"{connection}/{object_type}/{middle}v{number}"


@dataclass(frozen=True)
class VersionInfo:
    id: int
    connection: str
    object_type: str
    direction: str
    number: int
    document: dict[str, Any] = field(repr=False)
    author: str
    reason: str
    created_at: datetime
    active: bool = False

    @property
    def label(self) -> str:
        return version_label(self.connection, self.object_type, self.direction, self.number)

    def public(self, *, with_document: bool = False) -> dict[str, Any]:
        view: dict[str, Any] = {
            "version": self.number, "label": self.label, "object": self.object_type,
            "direction": self.direction, "author": self.author, "reason": self.reason,
            "created_at": self.created_at.isoformat(), "active": self.active,
        }
        if with_document:
            view["document"] = self.document
        return view


def _reader(engine: Engine) -> Any:
    return engine.connect().execution_options(hub_readonly=True)


def _connection_id(conn: Any, name: str) -> int:
    found = conn.execute(select(CONN.c.id).where(CONN.c.name == name)).scalar()
    if found is None:
        raise NotFoundError(f"no connection named {name!r}")
    return int(found)


def _active_ids(conn: Any, connection_id: int | None = None) -> dict[tuple[int, str, str],
                                                                     int | None]:
    """(connection id, object, direction) -> the active version id (None: the shipped file)."""
    newest = select(func.max(A.c.id)).group_by(A.c.connection_id, A.c.object_type,
                                               A.c.direction)
    if connection_id is not None:
        newest = newest.where(A.c.connection_id == connection_id)
    rows = conn.execute(select(A.c.connection_id, A.c.object_type, A.c.direction,
                               A.c.version_id).where(A.c.id.in_(newest.scalar_subquery())))
    return {(r.connection_id, r.object_type, r.direction): r.version_id for r in rows}


def _info(row: Any, connection: str, active: dict[tuple[int, str, str], int | None]
          ) -> VersionInfo:
    key = (row.connection_id, row.object_type, row.direction)
    return VersionInfo(row.id, connection, row.object_type, row.direction, row.number,
                       dict(row.document), row.author, row.reason or "", row.created_at,
                       active.get(key) == row.id)


def create_version(engine: Engine, *, connection: str, document: dict[str, Any], reason: str,
                   author: str) -> VersionInfo:
    """Store a checked document as the next version of its object and direction (not live)."""
    object_type, direction = document["object"], document["direction"]
    stored = {k: v for k, v in document.items() if k != "version"}
    try:
        with engine.begin() as conn:
            cid = _connection_id(conn, connection)
            last = conn.execute(select(func.max(V.c.number)).where(
                V.c.connection_id == cid, V.c.object_type == object_type,
                V.c.direction == direction)).scalar()
            number = int(last or 0) + 1
            conn.execute(insert(V).values(
                connection_id=cid, object_type=object_type, direction=direction, number=number,
                document=stored, author=author, reason=reason, created_at=datetime.now(UTC)))
            label = version_label(connection, object_type, direction, number)
            audit(conn, author, "mapping.version_created", "mapping", label[:64],
                  {"label": label, "reason": reason, "rules": len(stored["rules"])})
    except IntegrityError:
        raise ConflictError("another version was saved at the same moment; try again") from None
    return get_version(engine, connection, object_type, direction, number)


def list_versions(engine: Engine, connection: str, object_type: str | None = None,
                  direction: str | None = None) -> list[VersionInfo]:
    with _reader(engine) as conn:
        cid = _connection_id(conn, connection)
        stmt = select(V).where(V.c.connection_id == cid).order_by(
            V.c.object_type, V.c.direction, V.c.number)
        if object_type:
            stmt = stmt.where(V.c.object_type == object_type)
        if direction:
            stmt = stmt.where(V.c.direction == direction)
        active = _active_ids(conn, cid)
        return [_info(r, connection, active) for r in conn.execute(stmt)]


def get_version(engine: Engine, connection: str, object_type: str, direction: str,
                number: int) -> VersionInfo:
    with _reader(engine) as conn:
        cid = _connection_id(conn, connection)
        row = conn.execute(select(V).where(
            V.c.connection_id == cid, V.c.object_type == object_type,
            V.c.direction == direction, V.c.number == number)).first()
        if row is None:
            raise NotFoundError(f"{connection} has no {direction} {object_type} mapping "
                                f"version {number}")
        return _info(row, connection, _active_ids(conn, cid))


def active_number(engine: Engine, connection: str, object_type: str, direction: str
                  ) -> int | None:
    """The live version's number, or None while the shipped file is live."""
    history = activation_history(engine, connection, object_type, direction)
    number = history[-1]["version"] if history else None
    return None if number is None else int(number)


def activation_history(engine: Engine, connection: str, object_type: str, direction: str
                       ) -> list[dict[str, Any]]:
    """Every activation, oldest first: version (None: the shipped file), who, when, why."""
    with _reader(engine) as conn:
        cid = _connection_id(conn, connection)
        rows = conn.execute(
            select(A.c.id, V.c.number, A.c.actor, A.c.reason, A.c.activated_at)
            .select_from(A.outerjoin(V, V.c.id == A.c.version_id))
            .where(A.c.connection_id == cid, A.c.object_type == object_type,
                   A.c.direction == direction).order_by(A.c.id)).all()
    return [{"version": r.number, "actor": r.actor, "reason": r.reason,
             "activated_at": r.activated_at.isoformat()} for r in rows]


def activate(engine: Engine, *, connection: str, object_type: str, direction: str,
             number: int | None, actor: str, reason: str = "",
             action: str = "mapping.activated") -> bool:
    """Make a version (None: the shipped file) the live one. False when it already was."""
    version = get_version(engine, connection, object_type, direction, number) \
        if number is not None else None
    with engine.begin() as conn:
        cid = _connection_id(conn, connection)
        current = _active_ids(conn, cid).get((cid, object_type, direction))
        wanted = version.id if version else None
        if current == wanted:
            return False
        conn.execute(insert(A).values(
            connection_id=cid, object_type=object_type, direction=direction, version_id=wanted,
            actor=actor, reason=reason, activated_at=datetime.now(UTC)))
        label = version.label if version else f"{connection}/{object_type}/default"
        audit(conn, actor, action, "mapping", label[:64],
              {"label": label, "direction": direction, "reason": reason})
    return True


def previous_number(engine: Engine, connection: str, object_type: str, direction: str
                    ) -> int | None:
    """The version that was live before the current one (None: the shipped file)."""
    history: list[int | None] = [h["version"] for h in activation_history(
        engine, connection, object_type, direction)]
    if not history:
        raise ConflictError(f"no {direction} {object_type} mapping of {connection} was ever "
                            "activated: the shipped default is live, nothing to roll back")
    current = history[-1]
    for number in reversed(history[:-1]):
        if number != current:
            return number
    return None  # the first activation replaced the shipped file


def add_custom_field(engine: Engine, custom: CustomField, actor: str) -> CustomField:
    try:
        with engine.begin() as conn:
            conn.execute(insert(CF).values(
                name=custom.name, type=custom.type, label=custom.label,
                choices=list(custom.values), created_by=actor, created_at=datetime.now(UTC)))
            audit(conn, actor, "custom_field.created", "custom_field", custom.name[:64],
                  custom.describe())
    except IntegrityError:
        raise ConflictError(f"a custom field named {custom.name!r} already exists") from None
    return custom


def list_custom_fields(engine: Engine) -> list[dict[str, Any]]:
    with _reader(engine) as conn:
        rows = conn.execute(select(CF).order_by(CF.c.name)).all()
    return [{**_custom(r).describe(), "created_by": r.created_by,
             "created_at": r.created_at.isoformat()} for r in rows]


def custom_field_specs(conn: Any) -> dict[str, FieldSpec]:
    """The declared custom fields as field specs, read in the caller's transaction."""
    return {row.name: _custom(row).spec() for row in conn.execute(select(CF))}


def _custom(row: Any) -> CustomField:
    return CustomField(row.name, row.type, row.label, tuple(row.choices or ()))


@dataclass
class _Snapshot:
    fingerprint: tuple[int, int]
    active: dict[tuple[str, str, str], tuple[int, str, dict[str, Any]] | None]
    custom: dict[str, FieldSpec]
    checked_at: float


class DbMappingStore:
    """The mapping each connection uses: its active stored version, else the shipped file.

    Thread-safe enough for gunicorn threads: a refresh builds a new snapshot and swaps it in;
    compiled mappings are cached by version id (versions never change once stored).
    """

    def __init__(self, engine: Engine, files: FileMappingStore | None = None, *,
                 max_age: float = MAPPING_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.files = files or FileMappingStore()
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._compiled: dict[tuple[int, int], Any] = {}

    # The file store's interface, for callers that know only the connector.
    def get(self, connector: str, object_type: str) -> Mapping:
        return self.files.get(connector, object_type)

    def get_outbound(self, connector: str, object_type: str) -> OutboundMapping:
        return self.files.get_outbound(connector, object_type)

    def get_for(self, connection: str, connector: str, object_type: str) -> Mapping:
        mapping: Mapping | None = self._active(connection, object_type, "inbound")
        return mapping or self.files.get(connector, object_type)

    def get_outbound_for(self, connection: str, connector: str, object_type: str
                         ) -> OutboundMapping:
        mapping: OutboundMapping | None = self._active(connection, object_type, "outbound")
        return mapping or self.files.get_outbound(connector, object_type)

    def custom_fields(self) -> dict[str, FieldSpec]:
        return dict(self._current().custom)

    def field_specs(self) -> dict[str, FieldSpec]:
        """Built-in and custom fields: what survivorship needs to merge custom values."""
        return {**CANONICAL_FIELDS, **self._current().custom}

    def refresh(self) -> None:
        """Reload now (after this process itself activated something, before a reapply)."""
        with self._lock:
            self._snapshot = self._load()

    def _active(self, connection: str, object_type: str, direction: str) -> Any:
        snapshot = self._current()
        entry = snapshot.active.get((connection, object_type, direction))
        if entry is None:
            return None
        version_id, label, document = entry
        key = (version_id, snapshot.fingerprint[1])
        if key not in self._compiled:
            compiled_doc = {**document, "version": label}
            self._compiled[key] = compile_outbound(compiled_doc) if direction == "outbound" \
                else compile_mapping(compiled_doc, snapshot.custom)
        return self._compiled[key]

    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        now = self._clock()
        if snapshot is not None and now - snapshot.checked_at < self.max_age:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot is not None and now - snapshot.checked_at < self.max_age:
                return snapshot
            if snapshot is not None and self._fingerprint() == snapshot.fingerprint:
                snapshot.checked_at = now
                return snapshot
            self._snapshot = self._load()
            return self._snapshot

    def _fingerprint(self) -> tuple[int, int]:
        with _reader(self.engine) as conn:
            row = conn.execute(select(select(func.max(A.c.id)).scalar_subquery(),
                                      select(func.max(CF.c.id)).scalar_subquery())).one()
        return int(row[0] or 0), int(row[1] or 0)

    def _load(self) -> _Snapshot:
        fingerprint = self._fingerprint()
        with _reader(self.engine) as conn:
            names = dict(conn.execute(select(CONN.c.id, CONN.c.name)).all())
            active_ids = _active_ids(conn)
            wanted = [v for v in active_ids.values() if v is not None]
            versions = {r.id: r for r in conn.execute(select(V).where(one_of(V.c.id, wanted)))}
            custom = specs_of([_custom(r) for r in conn.execute(select(CF))])
        active: dict[tuple[str, str, str], tuple[int, str, dict[str, Any]] | None] = {}
        for (cid, object_type, direction), version_id in active_ids.items():
            row = versions.get(version_id) if version_id is not None else None
            active[(names[cid], object_type, direction)] = None if row is None else (
                row.id, version_label(names[cid], object_type, direction, row.number),
                dict(row.document))
        return _Snapshot(fingerprint, active, custom, self._clock())
