"""Arrow columns built from joined buffers and machine arrays hold exactly the values given."""

from __future__ import annotations

import pytest

from trailvault.core.entrytable import hex_column, int_column, text_column


@pytest.mark.parametrize(
    "values",
    [["a", "bc", ""], ["é€𝄞", "plain", "ü"], ["x", None, "", None], [None], []],
)
def test_text_column_round_trips(values: list[str | None]) -> None:
    """ASCII, multi-byte UTF-8 (byte lengths differ from character lengths), nulls and empty strings."""
    column = text_column(values)
    assert column.to_pylist() == values
    assert column.null_count == values.count(None)


def test_hex_column_is_lowercase_hex_of_each_digest() -> None:
    digests = [bytes(range(32)), b"\xff" * 32, b"\x00" * 32]
    assert hex_column(digests).to_pylist() == [digest.hex() for digest in digests]
    assert hex_column([]).to_pylist() == []


@pytest.mark.parametrize("values", [[1, 2, 3], [-(2**63), 0, 2**63 - 1], [1_700_000_000_000_000], []])
def test_int_column_holds_each_value_as_int64(values: list[int]) -> None:
    """Extremes of int64 and µs timestamps survive the machine-array route unchanged."""
    column = int_column(values)
    assert str(column.type) == "int64"
    assert column.to_pylist() == values
    assert column.null_count == 0


def test_int_column_refuses_a_value_out_of_range() -> None:
    with pytest.raises(OverflowError):
        int_column([2**63])


@pytest.mark.parametrize("empty_at", [0, 1, 3])
def test_hex_column_gives_an_empty_digest_the_empty_string(empty_at: int) -> None:
    """A download page may hold bodies whose hash it cannot claim (redacted, masked): their
    empty digests sit among 32-byte ones, first or not, and the column stays valid."""
    digests = [bytes([index]) * 32 for index in range(4)]
    digests[empty_at] = b""
    column = hex_column(digests)
    column.validate(full=True)
    assert column.to_pylist() == [digest.hex() for digest in digests]
    assert hex_column([b"", b""]).to_pylist() == ["", ""]
