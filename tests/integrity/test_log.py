"""Leaves finished from parts computed before the seq is known are the leaves of the whole entry."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trailvault.core.event import Event
from trailvault.core.integrity.log import entry_leaf, leaf_from_parts, leaf_parts

# Producer ids are any visible ASCII, so quotes, backslashes and the text `,"seq":0,` itself.
IDS = st.one_of(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
                st.just('x","seq":0,"time":"y'))  # fmt: skip
NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
TIMES = st.integers(-62135596800_000000, 253402300799_999999)


@settings(max_examples=300, deadline=None)
@given(IDS, NAMES, NAMES, TIMES, TIMES, st.integers(1, 2**62), st.binary(min_size=32, max_size=32))
def test_parts_finish_into_the_entry_leaf(
    event_id: str, app: str, channel: str, time_us: int, received_us: int, seq: int, body_hash: bytes
) -> None:
    """For every id, name, time and seq, leaf_from_parts(leaf_parts(...), seq) == entry_leaf(..., seq, ...)."""
    event = Event(event_id, time_us, received_us, app, channel, seq, None)
    assert leaf_from_parts(leaf_parts(event, body_hash), seq) == entry_leaf(event, seq, body_hash)
