"""Filters as the stores run them, on both backends: bounds on what a filter may ask, its body paths
checked against the channels' schemas, and TIMESTAMP fields compared as instants."""

from __future__ import annotations

import pytest

from trailvault import Vault
from trailvault.core.query import MAX_FILTER_DEPTH, And, Compare, Filter, Not, Op, Or
from trailvault.errors import InvalidQuery

AUDIT = {
    "fields": [
        {"name": "auditEventTime", "type": "TIMESTAMP"},
        {"name": "operation", "type": "STRING"},
        {"name": "count", "type": "INTEGER"},
        {"name": "actor", "type": "RECORD", "fields": [{"name": "name", "type": "STRING"}]},
    ]
}
#: The same instant, 2023-01-16T19:00:00Z, as producers send it: offsets, precisions.
SAME_INSTANT = [
    "2023-01-16T20:00:00+01:00",
    "2023-01-16T19:00:00Z",
    "2023-01-16T19:00:00.000Z",
    "2023-01-16T14:00-05:00",
]


@pytest.fixture
def audit(vault: Vault) -> Vault:
    vault.open("audit", AUDIT)
    for stamp in ["2023-01-16T18:59:59.999999Z", *SAME_INSTANT, "2023-01-16T19:00:00.000001Z"]:
        vault.post("audit", {"auditEventTime": stamp, "operation": "LOGON", "count": 1})
    return vault


def _seqs(vault: Vault, text: str | Filter, channel: str | None = "audit") -> list[int]:
    return [event.seq for event in vault.iter_events(channel, filter=text, sort_by="seq")]


# -- item 11: filters that parse never reach a store they would break ------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("seq gt 9223372036854775808", "9223372036854775808: the integer is outside the signed 64-bit range"),
        ("count lt -9223372036854775809", "outside the signed 64-bit range"),
        ("count in (1, 1" + "0" * 30 + ")", "outside the signed 64-bit range"),
        ("count gt 1e400", "1e400: the number is out of range"),
    ],
)
def test_a_number_no_event_can_hold_is_refused_naming_it(audit: Vault, text: str, words: str) -> None:
    """An integer beyond 64 bits or a number beyond a double is InvalidQuery naming it (it was OverflowError)."""
    with pytest.raises(InvalidQuery, match=words) as caught:
        audit.events("audit", filter=text)
    assert caught.value.field == "filter"


def test_the_same_number_in_a_tree_built_in_python_is_refused(audit: Vault) -> None:
    """A filter tree from Python gets the same check as a parsed one."""
    with pytest.raises(InvalidQuery, match="outside the signed 64-bit range"):
        audit.events("audit", filter=Compare("seq", Op.GT, 2**63))


@pytest.mark.parametrize("count", [2, 31, 40, 1000, 1001])
def test_a_run_of_nots_is_answered(audit: Vault, count: int) -> None:
    """Chained nots (30 gave SQLite's parser stack overflow as a 503, 1,000 a RecursionError) are answered."""
    expected = _seqs(audit, "count eq 1") if count % 2 == 0 else []
    assert _seqs(audit, "not " * count + "(count eq 1)") == expected


def test_nesting_up_to_the_limit_runs_and_deeper_is_refused(audit: Vault) -> None:
    """and/or/not nested MAX_FILTER_DEPTH levels run on the store; one level more is InvalidQuery naming filter."""

    def nested(levels: int) -> Filter:
        tree: Filter = Compare("count", Op.EQ, 1)
        for level in range(levels):
            # A sibling before the nested part is the shape that takes most of SQLite's parser stack.
            sibling = Compare("operation", Op.EQ, "LOGON")
            shapes: list[Filter] = [Not(tree), And((sibling, tree)), Or((Compare("count", Op.EQ, 7), tree))]
            tree = shapes[level % 3]
        return tree

    deepest = nested(MAX_FILTER_DEPTH - 1)  # the listing wraps it with where= in one more level
    assert _seqs(audit, deepest) == _seqs(audit, nested(MAX_FILTER_DEPTH - 1))
    assert len(audit.events("audit", filter=deepest, where={"operation": "LOGON"}, sort_by="count", limit=2)) == 2
    with pytest.raises(InvalidQuery, match="nest deeper than") as caught:
        audit.events("audit", filter=nested(MAX_FILTER_DEPTH + 1))
    assert caught.value.field == "filter"
    with pytest.raises(InvalidQuery, match="nest deeper than"):
        audit.events("audit", filter=nested(100_000))


# -- item 14: a filter names fields of the schema ------------------------------------------------------------


def test_a_field_the_channel_does_not_have_is_refused_naming_it(audit: Vault) -> None:
    """A filter on a path the channel's schema lacks is InvalidQuery naming it, with the closest field."""
    with pytest.raises(InvalidQuery, match=r"'operaton'.*did you mean operation") as caught:
        audit.events("audit", filter='operaton eq "LOGON"')
    assert caught.value.field == "filter"
    with pytest.raises(InvalidQuery, match=r"'actor\.nmae'"):
        audit.events("audit", filter="actor.nmae pr")
    with pytest.raises(InvalidQuery, match=r"'count\.inner'"):
        audit.events("audit", filter="count.inner eq 1")


def test_across_channels_a_field_must_exist_in_one_of_them(audit: Vault) -> None:
    """Without a channel a path is refused only when no channel of the app has it."""
    audit.open("other", {"fields": [{"name": "colour", "type": "STRING"}]})
    audit.post("other", {"colour": "red"})
    assert len(_seqs(audit, 'colour eq "red"', channel=None)) == 1
    with pytest.raises(InvalidQuery, match="no channel this listing reads has a field 'flavour'"):
        audit.events(filter='flavour eq "red"')


def test_a_filter_naming_its_channels_is_checked_against_those_only(audit: Vault) -> None:
    """A filter that must meet channel eq/in is checked against those channels' schemas, not all the app's."""
    audit.open("other", {"fields": [{"name": "colour", "type": "STRING"}]})
    audit.post("other", {"colour": "red"})
    with pytest.raises(InvalidQuery, match="the schema of channel 'audit' has no field 'colour'"):
        audit.events(filter='channel in ["audit"] and colour eq "red"')
    assert len(audit.events(filter='channel eq "other" and colour eq "red"')) == 1


def test_a_channel_with_additional_fields_accepts_any_path(audit: Vault) -> None:
    """Where the schema allows extra fields, any path is a field; envelope fields are always allowed."""
    audit.open("free", {"fields": [], "additional_fields": True})
    audit.post("free", {"anything": {"deep": 1}})
    assert len(_seqs(audit, "anything.deep eq 1", channel="free")) == 1
    assert len(_seqs(audit, 'seq ge 1 and time pr and id pr and channel eq "free"', channel="free")) == 1


def test_a_field_added_by_another_writer_is_found(audit: Vault, vault_location: object) -> None:
    """A field another process added to the schema is looked up in the stored schema before it is refused."""
    import trailvault

    assert audit.events("audit", filter="count pr")  # the schema is cached now
    with trailvault.open_vault(vault_location, create=False) as other:  # type: ignore[arg-type]
        other.open("audit", {"fields": [*AUDIT["fields"], {"name": "added", "type": "STRING"}]})
        other.post("audit", {"added": "yes"})
    assert len(_seqs(audit, 'added eq "yes"')) == 1


# -- item 15: TIMESTAMP fields compare as instants -----------------------------------------------------------


@pytest.mark.parametrize("comparand", SAME_INSTANT)
def test_a_timestamp_field_compares_as_an_instant(audit: Vault, comparand: str) -> None:
    """ge/gt/lt/le/eq/ne/in on a TIMESTAMP field match the instant, whatever offset or precision was sent."""
    before, *same, after = _seqs(audit, "seq pr")
    assert _seqs(audit, f'auditEventTime ge "{comparand}"') == [*same, after]
    assert _seqs(audit, f'auditEventTime gt "{comparand}"') == [after]
    assert _seqs(audit, f'auditEventTime lt "{comparand}"') == [before]
    assert _seqs(audit, f'auditEventTime le "{comparand}"') == [before, *same]
    assert _seqs(audit, f'auditEventTime eq "{comparand}"') == same
    assert _seqs(audit, f'auditEventTime ne "{comparand}"') == [before, after]
    assert _seqs(audit, f'auditEventTime in ["{comparand}", "2023-01-16T18:59:59.999999Z"]') == [before, *same]
    assert _seqs(audit, f'not (auditEventTime eq "{comparand}")') == [before, after]


def test_a_timestamp_comparand_that_is_not_one_is_refused(audit: Vault) -> None:
    """A range on a TIMESTAMP field with text that is no timestamp is InvalidQuery naming the field."""
    with pytest.raises(InvalidQuery, match="auditEventTime is a TIMESTAMP"):
        audit.events("audit", filter='auditEventTime gt "yesterday"')


def test_text_operators_on_a_timestamp_look_at_its_canonical_text(audit: Vault) -> None:
    """sw/co/ew are text operators: they match the UTC text the body keeps."""
    assert len(_seqs(audit, 'auditEventTime sw "2023-01-16T19:00:00"')) == len(SAME_INSTANT) + 1


def test_across_channels_a_timestamp_field_compares_as_an_instant(audit: Vault) -> None:
    """Without a channel, a field that is a TIMESTAMP in every channel declaring it compares as an instant."""
    audit.open("audit2", AUDIT)
    audit.post("audit2", {"auditEventTime": "2023-01-16T21:00:00+02:00"})
    found = audit.events(filter='auditEventTime eq "2023-01-16T19:00:00Z"', limit=100)
    assert len(found) == len(SAME_INSTANT) + 1
