"""From a stored delivery to canonical records: parse with the connector, map with the mapping.

Pure with respect to storage: a delivery's bytes and the connection's settings in, canonical
records out. Mapping problems ride along on each record; they never stop the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from connectors.base import ConnectionContext, Delivery
from connectors.http import VendorHttp
from connectors.registry import get_connector
from hub.domain.contact import CanonicalRecord, FieldSpec
from hub.domain.mapping import Mapping


class MappingSource(Protocol):
    """Where a worker finds the mapping for a connection's records (its active version, or
    the connector's shipped default) and the fields survivorship knows (custom ones too)."""

    def get_for(self, connection: str, connector: str, object_type: str) -> Mapping: ...

    def field_specs(self) -> dict[str, FieldSpec]: ...


def canonical_records(
    *,
    connection: str,
    connector_key: str,
    settings: dict[str, object],
    credentials: dict[str, str],
    event_type: str,
    delivery_key: str,
    headers: dict[str, str],
    body: bytes,
    event_id: str,
    mappings: MappingSource,
    keep_tokens: Callable[[VendorHttp], VendorHttp] | None = None,
) -> list[CanonicalRecord]:
    connector = get_connector(connector_key)
    delivery = Delivery(key=delivery_key, event_type=event_type, headers=headers)
    context = ConnectionContext(name=connection, settings=settings, credentials=credentials)
    records = []
    http = None
    for source in connector.parse(delivery, body, context):
        if source.fetch:
            if http is None:  # one client (one token) per delivery
                http = connector.api_client(context)
                if keep_tokens is not None:
                    http = keep_tokens(http)
            source = connector.fetch(http, source)
        mapping = mappings.get_for(connection, connector_key, source.object_type)
        fields, problems = mapping.apply(source.payload)
        records.append(
            CanonicalRecord(
                connection=connection,
                object_type=source.object_type,
                external_id=source.external_id,
                observed_at=source.observed_at,
                event_id=event_id,
                fields=fields,
                mapping_version=mapping.version,
                problems=problems,
                previous_external_id=source.previous_external_id,
            )
        )
    return records
