"""Mapping documents: the shipped YAML files, and what a broken document tells the admin."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.registry import CONNECTORS
from hub.adapters.mapping_files import DEFAULT_DIR, FileMappingStore
from hub.adapters.mapping_schema import load_document
from hub.domain.errors import ConfigurationError

SHIPPED = sorted(p for p in DEFAULT_DIR.glob("*.yaml") if p.name.count(".") == 2)  # inbound


def store_with(tmp_path: Path, text: str, name: str = "acme.thing.yaml") -> FileMappingStore:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return FileMappingStore(tmp_path)


GOOD = """
connector: acme
object: thing
rules:
  - target: email
    source: email
    transforms: [email]
"""


# --- the shipped mappings --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connector", "object_type"),
    sorted({(key, obj) for key, cls in CONNECTORS.items() for obj in cls.events.values()}),
)
def test_every_object_a_connector_yields_has_a_shipped_mapping(connector, object_type):
    assert (DEFAULT_DIR / f"{connector}.{object_type}.yaml").is_file()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_mapping_loads_and_compiles(path):
    connector, object_type, _ = path.name.split(".")
    mapping = FileMappingStore().get(connector, object_type)
    assert (mapping.connector, mapping.object_type) == (connector, object_type)
    assert mapping.version == f"file:{path.name}"
    assert mapping.rules


def test_mappings_are_compiled_once_per_store():
    store = FileMappingStore()
    assert store.get("shopify", "customer") is store.get("shopify", "customer")


# --- store errors ----------------------------------------------------------------------------


def test_missing_mapping_names_the_file_it_looked_for(tmp_path):
    with pytest.raises(ConfigurationError, match=r"mapping for acme thing \(acme\.thing\.yaml\)"):
        FileMappingStore(tmp_path).get("acme", "thing")


def test_invalid_yaml_names_the_file(tmp_path):
    store = store_with(tmp_path, "connector: acme\nrules: [unclosed\n")
    with pytest.raises(ConfigurationError, match=r"^acme\.thing\.yaml: not valid YAML"):
        store.get("acme", "thing")


def test_yaml_that_is_not_a_mapping_names_the_file(tmp_path):
    store = store_with(tmp_path, "- just\n- a list\n")
    with pytest.raises(
        ConfigurationError, match=r"^acme\.thing\.yaml: a mapping document must be a mapping"
    ):
        store.get("acme", "thing")


def test_version_written_in_the_file_is_kept(tmp_path):
    store = store_with(tmp_path, GOOD + "version: '2026-11'\n")
    assert store.get("acme", "thing").version == "2026-11"


def test_version_defaults_to_the_file_name(tmp_path):
    assert store_with(tmp_path, GOOD).get("acme", "thing").version == "file:acme.thing.yaml"


def test_unknown_key_in_a_rule_names_file_rule_and_key(tmp_path):
    store = store_with(tmp_path, GOOD.replace("source: email", "sources: email"))
    with pytest.raises(ConfigurationError) as caught:
        store.get("acme", "thing")
    assert str(caught.value) == "acme.thing.yaml: rules.0.sources: Unknown field."


def test_rule_with_both_source_and_value_names_file_rule_and_problem(tmp_path):
    store = store_with(tmp_path, GOOD.replace("source: email", "source: email\n    value: x"))
    with pytest.raises(
        ConfigurationError,
        match=r"^acme\.thing\.yaml: rules\.0.*give exactly one of source or value",
    ):
        store.get("acme", "thing")


def test_missing_rules_are_named(tmp_path):
    store = store_with(tmp_path, "connector: acme\nobject: thing\n")
    with pytest.raises(
        ConfigurationError, match=r"^acme\.thing\.yaml: rules: Missing data for required field"
    ):
        store.get("acme", "thing")


def test_compile_error_in_a_file_names_the_mapping_rule_and_problem(tmp_path):
    text = GOOD + "  - target: first_name\n    source: first\n    transforms: [shout]\n"
    with pytest.raises(
        ConfigurationError, match=r"mapping acme\.thing, rule 2: unknown transform 'shout'"
    ):
        store_with(tmp_path, text).get("acme", "thing")


def test_malformed_path_in_a_file_names_the_mapping_and_rule(tmp_path):
    text = GOOD + "  - target: first_name\n    source: 'default_address['\n"
    with pytest.raises(ConfigurationError, match=r"acme\.thing.*rule 2"):
        store_with(tmp_path, text).get("acme", "thing")


# --- the document schema ---------------------------------------------------------------------


def _doc(rule: dict) -> dict:
    return {"connector": "acme", "object": "thing", "rules": [rule]}


def test_schema_fills_in_defaults():
    document = load_document(_doc({"target": "email", "source": "email"}), "doc")
    assert document["direction"] == "inbound"
    assert document["version"] == "default"
    assert document["rules"][0]["transforms"] == []


def test_schema_hands_an_in_condition_to_the_compiler_as_in():
    rule = {"target": "email", "source": "e", "when": {"path": "kind", "in": ["a", "b"]}}
    assert load_document(_doc(rule), "doc")["rules"][0]["when"] == {
        "path": "kind",
        "in": ["a", "b"],
    }


def test_schema_accepts_a_list_of_source_paths():
    rule = {"target": "email", "source": ["a", "b"]}
    assert load_document(_doc(rule), "doc")["rules"][0]["source"] == ["a", "b"]


@pytest.mark.parametrize("source", ["", [], ["a", ""], 5])
def test_schema_refuses_a_source_that_is_not_paths(source):
    with pytest.raises(
        ConfigurationError, match="rules.0.source: must be a path or a non-empty list"
    ):
        load_document(_doc({"target": "email", "source": source}), "doc")


@pytest.mark.parametrize(
    "condition", [{"path": "kind"}, {"path": "kind", "equals": 1, "present": True}]
)
def test_schema_refuses_a_condition_without_exactly_one_test(condition):
    rule = {"target": "email", "source": "e", "when": condition}
    with pytest.raises(
        ConfigurationError, match="a condition needs exactly one of equals, in, matches, present"
    ):
        load_document(_doc(rule), "doc")


def test_schema_refuses_an_unknown_direction():
    raw = {**_doc({"target": "email", "source": "e"}), "direction": "sideways"}
    with pytest.raises(ConfigurationError, match="^doc: direction: Must be one of: inbound"):
        load_document(raw, "doc")


def test_schema_refuses_an_empty_rule_list():
    with pytest.raises(ConfigurationError, match="^doc: rules: Shorter than minimum length 1"):
        load_document({"connector": "acme", "object": "thing", "rules": []}, "doc")
