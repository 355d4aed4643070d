"""Sorting by a schema field: the same order, nulls placement and exact paging on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from trailvault import Vault
from trailvault.errors import InvalidQuery

SCHEMA = {
    "fields": [
        {"name": "amount", "type": "FLOAT"},
        {"name": "count", "type": "INTEGER"},
        {"name": "name", "type": "STRING"},
        {"name": "flag", "type": "BOOLEAN"},
        {"name": "at", "type": "TIMESTAMP"},
        {"name": "user", "type": "RECORD", "fields": [{"name": "email", "type": "STRING"}]},
    ]
}
NAMES = ["b", "B", "a", "é", "z", "Zed", "ab", "a", None, "b", "Émile", "aa"]


def _body(n: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": [3.5, -1.0, 10.0, 3.5, 2.25, 1e10, 0.0, 3.5, 7.0, -2.5, 4.0, 3.5][n],
        "count": [5, 3, 5, 1, 9007199254740993, -4, 5, 0, 2, 5, 7, 1][n],
        "flag": [True, False, True, False, True, True, False, True, False, False, True, False][n],
        "at": f"2024-0{1 + n % 9}-0{1 + n % 7}T10:00:00Z",
        "user": {"email": f"u{n}@example.com"},
    }
    if NAMES[n] is not None:
        body["name"] = NAMES[n]
    if n in (2, 7):
        del body["amount"]  # missing values sort first going up
    return body


@pytest.fixture
def sorted_vault(vault: Vault) -> Vault:
    vault.open("things", SCHEMA)
    vault.post_many("things", [_body(n) for n in range(len(NAMES))])
    return vault


def _expected(vault: Vault, field: str, descending: bool) -> list[int]:
    events = list(vault.iter_events("things", sort_by="seq"))

    def key(event: Any) -> tuple[bool, Any, int]:
        value = event.body.get(field)
        return (value is not None, value, event.seq)

    ordered = sorted(events, key=key)
    if descending:
        ordered = sorted(events, key=lambda e: (e.body.get(field) is not None, e.body.get(field), e.seq), reverse=True)
    return [event.seq for event in ordered]


@pytest.mark.parametrize("field", ["amount", "count", "name", "flag", "at"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorting_by_a_body_field_pages_exactly(sorted_vault: Vault, field: str, order: str) -> None:
    """Pages of 3 walk the events in (field, seq) order, missing values first going up, none skipped."""
    seen: list[int] = []
    page = None
    while True:
        found = sorted_vault.events("things", sort_by=field, sort_order=order, limit=3, page=page)
        seen.extend(event.seq for event in found)
        page = found.next_page
        if page is None:
            break
    assert seen == _expected(sorted_vault, field, order == "desc")
    assert seen == [event.seq for event in sorted_vault.iter_events("things", sort_by=field, sort_order=order)]


def test_sorting_pages_stay_exact_while_events_arrive(sorted_vault: Vault) -> None:
    """Events posted between pages appear in their place or later, and no earlier event is skipped or repeated."""
    first = sorted_vault.events("things", sort_by="count", limit=4)
    sorted_vault.post("things", {"count": 5, "name": "late"})
    rest = list(first)
    page = first.next_page
    while page:
        found = sorted_vault.events("things", sort_by="count", limit=4, page=page)
        rest.extend(found)
        page = found.next_page
    seqs = [event.seq for event in rest]
    assert len(seqs) == len(set(seqs)) == len(NAMES) + 1


def test_sorting_needs_a_channel_and_a_scalar_field(sorted_vault: Vault) -> None:
    """Without a channel, or on a RECORD or unknown field, sort_by is refused naming it."""
    for kwargs in (
        {"sort_by": "amount"},
        {"channel": "things", "sort_by": "user"},
        {"channel": "things", "sort_by": "x"},
    ):
        with pytest.raises(InvalidQuery) as refused:
            sorted_vault.events(**kwargs)
        assert refused.value.field == "sort_by"


def test_a_page_token_of_another_sort_is_refused(sorted_vault: Vault) -> None:
    """A token from a sort by one field does not continue a sort by another."""
    token = sorted_vault.events("things", sort_by="name", limit=2).next_page
    with pytest.raises(InvalidQuery, match="different query"):
        sorted_vault.events("things", sort_by="count", limit=2, page=token)


def test_floats_that_differ_past_15_digits_page_exactly(vault: Vault) -> None:
    """Cursor values keep every digit: values equal to 15 digits still page without loops or skips."""
    vault.open("floats", {"fields": [{"name": "x", "type": "FLOAT"}]})
    values = [0.30000000000000004, 0.1234567890123456, 0.5, None, 0.30000000000000004, 0.3]
    vault.post_many("floats", [{} if value is None else {"x": value} for value in values])
    for order in ("asc", "desc"):
        seen, page = [], None
        for _ in range(20):
            found = vault.events("floats", sort_by="x", sort_order=order, limit=1, page=page)
            seen.extend(event.seq for event in found)
            page = found.next_page
            if page is None:
                break
        assert len(seen) == len(set(seen)) == len(values)
