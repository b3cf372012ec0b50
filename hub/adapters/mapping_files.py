"""Default mappings from the YAML files in mappings/.

`<connector>.<object>.yaml` maps a tool's record into the canonical contact (inbound);
`<connector>.<object>.outbound.yaml` maps the golden record into the tool's payload (outbound).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hub.adapters.mapping_schema import load_document
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

    def _cached(self, connector: str, object_type: str, direction: str) -> Any:
        key = (connector, object_type, direction)
        if key not in self._cache:
            self._cache[key] = self._load(connector, object_type, direction)
        return self._cache[key]

    def _load(self, connector: str, object_type: str, direction: str) -> Any:
        suffix = ".outbound.yaml" if direction == "outbound" else ".yaml"
        path = self.directory / f"{connector}.{object_type}{suffix}"
        if not path.is_file():
            raise ConfigurationError(
                f"no {direction} mapping for {connector} {object_type} ({path.name})")
        document = self.read(path)
        if document["direction"] != direction:
            raise ConfigurationError(f"{path.name}: direction must be {direction}")
        if document["version"] == "default":
            document["version"] = f"file:{path.name}"
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
