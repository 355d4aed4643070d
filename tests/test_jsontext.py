"""Reading JSON text: what orjson would silently change (a repeated key, an integer beyond 64 bits) is refused."""

from __future__ import annotations

import re

import pytest

from trailvault import Vault
from trailvault.core.jsontext import decode_json
from trailvault.errors import BatchRejected, InvalidInput, MalformedJSON, ValidationFailed


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"a": 1, "a": 2}', 'the key "a" appears more than once in the same object;'),
        (b'{"x": {"y": [1, {"k": 1, "k": 1}]}}', 'the key "k" appears more than once in the same object (at x.y[1])'),
        ('{"a\\u0062": 1, "ab": 2}', 'the key "ab" appears more than once'),
    ],
)
def test_a_repeated_key_is_refused_naming_it(text: str | bytes, words: str) -> None:
    """A key sent twice in one object is MalformedJSON naming the key and where (orjson kept the last one)."""
    with pytest.raises(MalformedJSON, match=re.escape(words)):
        decode_json(text, field="body")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"n": -9223372036854775809}', "-9223372036854775809 (at n) is outside the signed 64-bit integer range"),
        ('[{"x": 123456789012345678901234567890}]', "123456789012345678901234567890 (at [0].x) is outside"),
        ('{"n": 9223372036854775808}', "9223372036854775808 (at n) is outside"),
        ('{"n": 1' + "0" * 300 + "}", "a number of 301 digits (at n) is outside"),
    ],
)
def test_an_integer_beyond_64_bits_is_refused_naming_its_path(text: str, words: str) -> None:
    """An integer outside the signed 64-bit range is InvalidInput naming its path (orjson made a float of it)."""
    with pytest.raises(InvalidInput, match=re.escape(words)):
        decode_json(text, field="body")


@pytest.mark.parametrize(
    "text",
    [
        '{"n": -9223372036854775808, "m": 9223372036854775807}',
        '{"colon": "a:b", "escaped": "\\u003a", "digits": "12345678901234567890123", "float": 1.5e300}',
        '{"time": "2023-01-16T19:00:00Z", "nested": {"a": 1, "b": [{"a": 2}]}}',
    ],
)
def test_text_orjson_reads_exactly_is_read_as_before(text: str) -> None:
    """Colons and long digit runs inside strings, escapes and 64-bit extremes read as the standard library does."""
    import json

    assert decode_json(text, field="body") == json.loads(text)


def test_a_repeated_key_or_a_long_integer_is_stored_nowhere(vault: Vault) -> None:
    """Posting such JSON text through the Python API stores nothing, on both backends."""
    vault.open("loose", {"fields": [{"name": "n", "type": "INTEGER"}], "additional_fields": True})
    for text in ('{"n": 1, "n": 2}', '{"n": -9223372036854775809}', '{"extra": 123456789012345678901234567890}'):
        with pytest.raises(InvalidInput):
            vault.post("loose", text)
    with pytest.raises(BatchRejected):
        vault.post_many("loose", ['{"n": 1}', '{"n": 2, "n": 3}'])
    assert len(vault.events("loose")) == 0


def test_a_long_integer_in_an_additional_field_of_a_dict_is_refused_naming_it(vault: Vault) -> None:
    """A Python dict with an integer outside 64 bits in an untyped field is ValidationFailed naming the field."""
    vault.open("free", {"fields": [], "additional_fields": True})
    with pytest.raises(ValidationFailed, match="big: 18446744073709551615 is outside the signed 64-bit") as caught:
        vault.post("free", {"big": 2**64 - 1})
    assert caught.value.field == "big"
    assert vault.get(vault.post("free", {"big": 2**63 - 1}).id).body == {"big": 2**63 - 1}
