"""The built-in schemas: datasafe matches the oci SDK's AuditEventSummary, and opening by name."""

from __future__ import annotations

import os
from pathlib import Path

import oci  # type: ignore[import-untyped]
import orjson
import pytest

import trailvault
from trailvault.core.schema import FieldType, Mode, parse_schema
from trailvault.core.schema.builtin import BUILTIN_SCHEMAS
from trailvault.errors import InvalidSchema

from ..conftest import run_cli

MODEL = oci.data_safe.models.AuditEventSummary
_TYPES = {
    "str": FieldType.STRING,
    "datetime": FieldType.TIMESTAMP,
    "bool": FieldType.BOOLEAN,
    "int": FieldType.INTEGER,
    "dict(str, str)": FieldType.JSON,
    "dict(str, dict(str, object))": FieldType.JSON,
}


def _sdk_enum(snake: str) -> tuple[str, ...]:
    prefix = snake.upper() + "_"
    # OPERATION_STATUS_SUCCESS belongs to operation_status, not operation: the name is the prefix and the value.
    return tuple(value for name in dir(MODEL) if name.isupper() and name == prefix + str(value := getattr(MODEL, name)))


def test_datasafe_holds_every_field_of_the_sdk_model_but_id_in_rest_spelling() -> None:
    """Every AuditEventSummary field but id (the event id) is there, camelCase, with the SDK's type and enum."""
    schema = parse_schema(BUILTIN_SCHEMAS["datasafe"])
    model = MODEL()
    expected = {model.attribute_map[name]: kind for name, kind in model.swagger_types.items() if name != "id"}
    assert {f.name: f.type for f in schema.fields} == {name: _TYPES[kind] for name, kind in expected.items()}
    for snake in model.swagger_types:
        found = schema.field(model.attribute_map[snake])
        if found is not None:
            assert set(found.allowed) == set(_sdk_enum(snake)), snake
    assert schema.timestamp_field() == "auditEventTime"
    required = {f.name for f in schema.fields if f.mode is Mode.REQUIRED}
    assert required == {"targetId", "targetName", "databaseType", "auditEventTime", "isAlerted"}


@pytest.mark.parametrize("name", ["datasafe", "builtin:datasafe"])
def test_a_vault_opens_a_channel_with_a_builtin_by_name(vault: trailvault.Vault, name: str) -> None:
    """vault.open("audit", "datasafe") and "builtin:datasafe" give the channel the built-in schema."""
    vault.open("audit", name)
    assert vault.channel("audit").schema == parse_schema(BUILTIN_SCHEMAS["datasafe"])
    vault.open("audit", "builtin:datasafe")  # the same again changes nothing
    assert vault.channel("audit").version == 1


def test_a_file_named_like_a_builtin_wins_over_the_bare_name(tmp_path: Path) -> None:
    """A bare name reads the file when one exists there; builtin: always names the built-in."""
    (tmp_path / "datasafe").write_bytes(orjson.dumps([{"name": "x", "type": "STRING"}]))
    cwd = os.getcwd()
    with trailvault.open_vault(tmp_path / "vault") as vault:
        os.chdir(tmp_path)
        try:
            vault.open("mine", "datasafe")
            vault.open("theirs", "builtin:datasafe")
        finally:
            os.chdir(cwd)
        assert [f.name for f in vault.channel("mine").schema.fields] == ["x"]
        assert len(vault.channel("theirs").schema.fields) == 40


def test_an_unknown_builtin_is_refused_listing_the_names(vault: trailvault.Vault) -> None:
    """builtin:NAME of no built-in raises InvalidSchema naming the built-ins."""
    with pytest.raises(InvalidSchema, match='no built-in schema "nope"; use one of builtin:datasafe'):
        vault.open("audit", "builtin:nope")


def test_cli_opens_a_channel_with_a_builtin_schema(tmp_path: Path) -> None:
    """trailvault channels open audit --schema datasafe, and builtin:nope exits 1 naming the built-ins."""
    vault = tmp_path / "vault"
    assert run_cli("init", vault=vault).returncode == 0
    opened = run_cli("channels", "open", "audit", "--schema", "datasafe", vault=vault, cwd=tmp_path)
    assert opened.returncode == 0, opened.stderr
    assert orjson.loads(opened.stdout) == {"opened": True, "channel": "audit", "version": 1}
    refused = run_cli("channels", "open", "other", "--schema", "builtin:nope", vault=vault)
    assert refused.returncode == 1 and "use one of builtin:datasafe" in refused.stderr
