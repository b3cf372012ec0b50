"""Default mappings from the YAML files in mappings/.

`<connector>.<object>.yaml` maps a tool's record into the canonical contact (inbound);
`<connector>.<object>.outbound.yaml` maps the golden record into the tool's payload (outbound).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hub.adapters.mapping_schema import load_document
from hub.domain.contact import CANONICAL_FIELDS, FieldSpec
from hub.domain.errors import ConfigurationError
from hub.domain.mapping import Mapping, OutboundMapping, compile_mapping, compile_outbound

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "mappings"


class FileMappingStore:
    """Compiled once per process; a file that does not validate fails loudly at first use."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or DEFAULT_DIR
        self._cache: dict[tuple[str, str, str], Any] = {}

    def get(self, connector: str, object_type: str) -> Mapping:
        mapping: Mapping = self._cached(connector, object_type, "inbound")
        return mapping

    def get_outbound(self, connector: str, object_type: str) -> OutboundMapping:
        mapping: OutboundMapping = self._cached(connector, object_type, "outbound")
        return mapping

    def get_for(self, connection: str, connector: str, object_type: str) -> Mapping:
        """Files know no connections: every connection of a connector shares its default."""
        return self.get(connector, object_type)

    def get_outbound_for(self, connection: str, connector: str, object_type: str
                         ) -> OutboundMapping:
        return self.get_outbound(connector, object_type)

    def field_specs(self) -> dict[str, FieldSpec]:
        return dict(CANONICAL_FIELDS)

    def _cached(self, connector: str, object_type: str, direction: str) -> Any:
        key = (connector, object_type, direction)
        if key not in self._cache:
            self._cache[key] = self._load(connector, object_type, direction)
        return self._cache[key]

    def document(self, connector: str, object_type: str, direction: str = "inbound"
                 ) -> dict[str, Any]:
        """The shipped default as a checked document (a starting point for an admin's edit)."""
        path = self._path(connector, object_type, direction)
        if not path.is_file():
            raise ConfigurationError(
                f"no {direction} mapping for {connector} {object_type} ({path.name})")
        document = self.read(path)
        if document["version"] == "default":
            document["version"] = f"file:{path.name}"
        return document

    def _path(self, connector: str, object_type: str, direction: str) -> Path:
        suffix = ".outbound.yaml" if direction == "outbound" else ".yaml"
        return self.directory / f"{connector}.{object_type}{suffix}"

    def _load(self, connector: str, object_type: str, direction: str) -> Any:
        document = self.document(connector, object_type, direction)
        path = self._path(connector, object_type, direction)
        if document["direction"] != direction:
            raise ConfigurationError(f"{path.name}: direction must be {direction}")
        if direction == "outbound":
            return compile_outbound(document)
        return compile_mapping(document)

    @staticmethod
    def read(path: Path) -> dict[str, Any]:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{path.name}: not valid YAML: {exc}") from None
        return load_document(raw, path.name)

    def all_documents(self) -> list[Path]:
        return sorted(self.directory.glob("*.yaml"))
