"""Canonical bytes, fingerprints and names: the encodings the Merkle tree will hash."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailvault.core.event import (
    Event,
    canonical_body,
    canonical_entry,
    check_id,
    check_name,
    entry_document,
    fingerprint,
)
from trailvault.errors import InvalidInput


def test_canonical_body_sorts_keys_at_every_depth() -> None:
    """Keys are sorted at every depth and there is no whitespace."""
    assert canonical_body({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()


def test_canonical_body_float_form() -> None:
    """Floats keep a fraction and use the shortest round-trip digits."""
    assert canonical_body({"x": 10.0, "y": 0.1, "z": 1e20}) == b'{"x":10.0,"y":0.1,"z":1e+20}'


def test_canonical_entry_known_answer() -> None:
    """The canonical entry of a fixed event is exactly these bytes."""
    event = Event("id-1", 1_728_262_800_000_000, 1_728_262_800_500_000, "default", "myindex", 7, {"company": "A"})
    body_hash = hashlib.sha256(canonical_body({"company": "A"})).digest()
    assert canonical_entry(event, 7, body_hash) == (
        b'{"app":"default","body_sha256":"' + body_hash.hex().encode() + b'","channel":"myindex","id":"id-1",'
        b'"received":"2024-10-07T01:00:00.500000Z","seq":7,"time":"2024-10-07T01:00:00.000000Z"}'
    )


def test_fingerprint_depends_on_given_time_only() -> None:
    """The fingerprint changes with the channel, the given time and the body."""
    body = hashlib.sha256(b"{}").digest()
    base = fingerprint("c", None, body)
    assert base == fingerprint("c", None, body)
    assert len({base, fingerprint("d", None, body), fingerprint("c", 1, body), fingerprint("c", None, b"x" * 32)}) == 4


def test_event_to_dict() -> None:
    """to_dict gives RFC 3339 UTC times with microseconds."""
    event = Event("i", 0, 1, "a", "c", 1, None)
    assert event.to_dict() == {
        "id": "i",
        "time": "1970-01-01T00:00:00.000000Z",
        "received": "1970-01-01T00:00:00.000001Z",
        "app": "a",
        "channel": "c",
        "seq": 1,
        "body": None,
    }


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "tab\t", "é"])
def test_check_id_refuses(bad: str) -> None:
    """Ids are 1-128 visible ASCII characters."""
    with pytest.raises(InvalidInput, match="id:"):
        check_id(bad)


def test_check_id_accepts_ocid() -> None:
    """An OCI-style id is accepted as is."""
    assert check_id("ocid1.datasafeauditevent.oc1..aaaa") == "ocid1.datasafeauditevent.oc1..aaaa"


@pytest.mark.parametrize("bad", ["", "-lead", "a b", "x" * 129, "sla/sh"])
def test_check_name_refuses(bad: str) -> None:
    """Channel and app names use a safe alphabet and name the field when refused."""
    with pytest.raises(InvalidInput, match="channel:"):
        check_name(bad, field="channel")


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20),
       st.integers(0, 2**40), st.integers(1, 2**40))  # fmt: skip
def test_canonical_entry_is_the_sorted_encoding(event_id: str, time_us: int, seq: int) -> None:
    """canonical_entry (written without a key sort) equals the sorted-key encoding of the entry."""
    event = Event(event_id, time_us, time_us + 5, "default", "myindex", seq, None)
    body_hash = hashlib.sha256(b"{}").digest()
    assert canonical_entry(event, seq, body_hash) == orjson.dumps(
        entry_document(event, seq, body_hash), option=orjson.OPT_SORT_KEYS
    )
