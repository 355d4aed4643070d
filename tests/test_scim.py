"""The SCIM filter language: the tree it parses to, its errors with columns, and listings on both backends."""

from __future__ import annotations

import pytest

from trailvault import Vault
from trailvault.core.query import And, Compare, Not, Op, Or, Present, mask_filter
from trailvault.core.scim import parse_filter, render_filter
from trailvault.errors import InvalidQuery


def test_data_safe_example() -> None:
    """The example of ARCHITECTURE §5 parses to an And of two comparisons."""
    assert parse_filter('(time ge "2021-06-04T01:00:26.000Z") and (operation eq "LOGON")') == And(
        (Compare("time", Op.GE, "2021-06-04T01:00:26.000Z"), Compare("operation", Op.EQ, "LOGON"))
    )


def test_and_binds_tighter_than_or_and_not_takes_one_factor() -> None:
    """a or b and not c  ==  a or (b and (not c)); keywords are case-insensitive."""
    assert parse_filter('a pr OR b EQ 1 And NOT c eq_cs "x"') == Or(
        (Present("a"), And((Compare("b", Op.EQ, 1), Not(Compare("c", Op.EQ_CS, "x")))))
    )
    assert parse_filter("not (a pr or b pr)") == Not(Or((Present("a"), Present("b"))))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('user.email co "@example.com"', Compare("user.email", Op.CO, "@example.com")),
        ("amount le -1.5e2", Compare("amount", Op.LE, -150.0)),
        ("seq gt 10", Compare("seq", Op.GT, 10)),
        ("ok eq true", Compare("ok", Op.EQ, True)),
        ("gone eq null", Compare("gone", Op.EQ, None)),
        ('name sw "a\\"b\\u00e9"', Compare("name", Op.SW, 'a"bé')),
        ('status in ("SUCCESS", "FAILURE")', Compare("status", Op.IN, ("SUCCESS", "FAILURE"))),
        ("code not_in [1, 2,3]", Compare("code", Op.NOT_IN, (1, 2, 3))),
        ("http_response.status_code ne 200", Compare("http_response.status_code", Op.NE, 200)),
    ],
)
def test_operators_and_values(text: str, expected: object) -> None:
    """Every operator, strings with JSON escapes, numbers, booleans, null and value lists."""
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("amount gt", 10, "expected a value after gt"),
        ("amount between 1", 8, "expected an operator after 'amount'"),
        ("(a pr", 6, "expected ')'"),
        ("a pr b pr", 6, "expected 'and', 'or' or the end"),
        ("name eq 'x'", 9, "strings take double quotes"),
        ("and eq 1", 1, "expected an attribute"),
        ("x.1bad eq 1", 1, "is not a field"),
        ("code in (1 2)", 12, "expected ',' or ')'"),
        ("", 1, "the filter ended"),
    ],
)
def test_errors_point_at_the_column(text: str, column: int, words: str) -> None:
    """A filter that does not parse names the 1-based column and what was expected there."""
    with pytest.raises(InvalidQuery) as caught:
        parse_filter(text)
    assert caught.value.field == "filter"
    assert f"at column {column}:" in caught.value.message and words in caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        'pin eq "4821"',
        'a pr OR b EQ 1 And NOT c eq_cs "x\\"y"',
        'not (a in ("x", 2, null) or b not_in [true, 1.5]) and time ge "2024-10-07T00:00Z"',
        "((a gt -3) and (b le 1e3)) or not not c pr",
    ],
)
def test_rendered_text_parses_back_to_the_same_tree(text: str) -> None:
    """render_filter writes text that parse_filter reads back to the very tree it came from."""
    tree = parse_filter(text)
    assert parse_filter(render_filter(tree)) == tree


def test_masking_keeps_the_shape_and_hides_values_on_sensitive_paths() -> None:
    """mask_filter replaces the values compared with a sensitive field, below one or holding one; nothing else."""
    tree = parse_filter('user.ip in ("10.0.0.1", "10.0.0.2") and user co "10." and holder eq "ann" and pin pr')
    masked = mask_filter(tree, {"user.ip"}, "[masked]")
    assert render_filter(masked) == (
        '(user.ip in ("[masked]", "[masked]")) and (user co "[masked]") and (holder eq "ann") and (pin pr)'
    )


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("seq gt 9223372036854775808", 8, "9223372036854775808: the integer is outside the signed 64-bit range"),
        ("seq gt -9223372036854775809", 8, "outside the signed 64-bit range"),
        ("n in (1, " + "9" * 5000 + ")", 10, "outside the signed 64-bit range"),
        ("amount gt 1e400", 11, "1e400: the number is out of range"),
    ],
)
def test_a_number_no_store_holds_is_refused_at_its_column(text: str, column: int, words: str) -> None:
    """Integers beyond 64 bits and numbers beyond a double are named, at their column (1e400 said 'invalid escape')."""
    with pytest.raises(InvalidQuery) as caught:
        parse_filter(text)
    assert f"at column {column}: " in caught.value.message and words in caught.value.message


def test_a_run_of_nots_reads_flat() -> None:
    """Two nots cancel, so a run of any length neither recurses nor nests (1,000 gave a RecursionError)."""
    assert parse_filter("not " * 1000 + "a pr") == Present("a")
    assert parse_filter("NOT " * 1001 + "a pr") == Not(Present("a"))
    assert parse_filter("not not (a pr and not not b pr)") == And((Present("a"), Present("b")))


def test_depth_and_length_are_bounded() -> None:
    """Hostile input cannot recurse without bound or be arbitrarily long."""
    with pytest.raises(InvalidQuery, match="nested deeper"):
        parse_filter("(" * 200 + "a pr" + ")" * 200)
    with pytest.raises(InvalidQuery, match="at most"):
        parse_filter("a pr or " * 5000 + "a pr")


def test_listing_with_a_filter(myindex: Vault) -> None:
    """vault.events(filter=...) gives the same events on both backends, combined with where and paged."""
    rows = [("Acme", 250.0), ("acme corp", 20.0), ("Globex", 99.99), ("Initech", 10.0), ("Umbrella", None)]
    for company, amount in rows:
        myindex.post("myindex", {"company": company} if amount is None else {"company": company, "amount": amount})

    def companies(text: str, **options: object) -> list[str]:
        return [e.body["company"] for e in myindex.iter_events("myindex", filter=text, **options)]  # type: ignore[arg-type]

    assert companies('company sw "ACME"') == ["Acme", "acme corp"]
    assert companies('(amount gt 50) and not (company eq "acme")') == ["Globex"]
    assert companies("amount lt 25 or not (amount pr)") == ["acme corp", "Initech", "Umbrella"]
    assert companies('company in ("Globex", "Initech") and seq ge 3') == ["Globex", "Initech"]
    assert companies("amount eq null") == ["Umbrella"]
    assert companies("amount gt 0", where={"company": "Acme"}) == ["Acme"]
    first = myindex.events("myindex", filter="amount pr", limit=2)
    second = myindex.events("myindex", filter="amount pr", limit=2, page=first.next_page)
    assert [e.seq for e in first] + [e.seq for e in second] == [1, 2, 3, 4]
    with pytest.raises(InvalidQuery, match="page"):
        myindex.events("myindex", filter="amount gt 1", limit=2, page=first.next_page)
