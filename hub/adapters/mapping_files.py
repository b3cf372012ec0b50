"""Default mappings from the YAML files in mappings/ (<connector>.<object>.yaml)."""

from __future__ import annotations

from pathlib import Path

import yaml

from hub.adapters.mapping_schema import load_document
from hub.domain.errors import ConfigurationError
from hub.domain.mapping import Mapping, compile_mapping

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "mappings"


class FileMappingStore:
    """Compiled once per process; a file that does not validate fails loudly at first use."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or DEFAULT_DIR
        self._cache: dict[tuple[str, str], Mapping] = {}

    def get(self, connector: str, object_type: str) -> Mapping:
        key = (connector, object_type)
        if key not in self._cache:
            self._cache[key] = self._load(connector, object_type)
        return self._cache[key]

    def _load(self, connector: str, object_type: str) -> Mapping:
        path = self.directory / f"{connector}.{object_type}.yaml"
        if not path.is_file():
            raise ConfigurationError(f"no mapping for {connector} {object_type} ({path.name})")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{path.name}: not valid YAML: {exc}") from None
        document = load_document(raw, path.name)
        document.setdefault("version", f"file:{path.name}")
        if document["version"] == "default":
            document["version"] = f"file:{path.name}"
        return compile_mapping(document)

    def all_documents(self) -> list[Path]:
        return sorted(self.directory.glob("*.yaml"))
