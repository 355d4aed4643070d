"""The log store (:class:`trailvault.adapters.store.contract.log.LogStore`) on every backend: appends, reads,
the tree and the vault's own values."""

from __future__ import annotations

import gc
import hashlib
import threading

import pytest

from trailvault.adapters.store import Store
from trailvault.adapters.store.base import StoredCheckpoint
from trailvault.core.event import Posted
from trailvault.core.query import And, Compare, EventQuery, Not, Op, Or, Present
from trailvault.errors import ChannelNotFound, Conflict, IdConflict, InvalidQuery

from .conftest import SCHEMA, StoreFactory, pending


def test_append_assigns_consecutive_seqs(orders: Store) -> None:
    """Seqs start at 1 and follow batch order."""
    outcomes = orders.append([[pending("a"), pending("b")], [pending("c")]])
    assert outcomes == [[Posted("a", 1), Posted("b", 2)], [Posted("c", 3)]]
    assert orders.log_size() == 3


def test_append_to_unknown_channel(orders: Store) -> None:
    """Appending to a channel that was never saved raises ChannelNotFound."""
    with pytest.raises(ChannelNotFound):
        orders.append([[pending("a", channel="nope")]])
    assert orders.log_size() == 0


def test_conflicting_batch_is_kept_out_others_commit(orders: Store) -> None:
    """A batch with a conflicting id is refused whole; the other batches of the transaction commit."""
    orders.append([[pending("x", given=True)]])
    outcomes = orders.append([[pending("new1"), pending("x", given=True, body='{"company":"B"}')], [pending("new2")]])
    assert isinstance(outcomes[0], IdConflict)
    assert outcomes[1] == [Posted("new2", 2)]
    assert orders.get_event("default", "new1") is None


def test_same_content_is_a_duplicate(orders: Store) -> None:
    """A given id with the same fingerprint returns the kept seq."""
    orders.append([[pending("x", given=True)]])
    assert orders.append([[pending("x", given=True)]]) == [[Posted("x", 1, duplicate=True)]]
    assert orders.log_size() == 1


def test_get_event_round_trip(orders: Store) -> None:
    """get_event returns the envelope and parsed body."""
    orders.append([[pending("a", time_us=42)]])
    event = orders.get_event("default", "a")
    assert event is not None
    assert (event.seq, event.time_us, event.received_us, event.app, event.channel, event.body) == (
        1, 42, 5_000_000, "default", "orders", {"company": "A"},
    )  # fmt: skip
    assert orders.get_event("other", "a") is None


def test_find_events_order_and_cursor(orders: Store) -> None:
    """find_events orders by (time, seq) and continues after a cursor."""
    orders.append([[pending(str(i), time_us=t) for i, t in enumerate([30, 10, 20, 10])]])
    query = EventQuery(app="default", channel="orders", limit=10)
    assert [e.id for e in orders.find_events(query)] == ["1", "3", "2", "0"]
    assert [e.id for e in orders.find_events(query.starting_after((10, 2)))] == ["3", "2", "0"]
    descending = EventQuery(app="default", descending=True, limit=2)
    assert [e.id for e in orders.find_events(descending)] == ["0", "2"]


def test_find_events_time_range(orders: Store) -> None:
    """The time range is [from, to)."""
    orders.append([[pending(str(t), time_us=t) for t in (10, 20, 30)]])
    query = EventQuery(app="default", time_from=20, time_to=30)
    assert [e.id for e in orders.find_events(query)] == ["20"]


def _bodies(store: Store, node: object) -> list[str]:
    query = EventQuery(app="default", filter=node, sort_by="seq", limit=100)  # type: ignore[arg-type]
    return [e.id for e in store.find_events(query)]


@pytest.fixture
def varied(orders: Store) -> Store:
    bodies = [
        '{"company":"Acme","n":5,"ok":true}',
        '{"company":"acme corp","n":7}',
        '{"company":"Globex","n":9,"ok":false}',
    ]
    orders.append([[pending(f"e{i}", body=body) for i, body in enumerate(bodies)]])
    return orders


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (Compare("company", Op.EQ_CS, "Acme"), ["e0"]),
        (Compare("company", Op.EQ, "ACME"), ["e0"]),
        (Compare("company", Op.NE, "Acme"), ["e1", "e2"]),
        (Compare("company", Op.CO, "cme"), ["e0", "e1"]),
        (Compare("company", Op.SW, "glo"), ["e2"]),
        (Compare("company", Op.EW, "corp"), ["e1"]),
        (Compare("n", Op.GT, 5), ["e1", "e2"]),
        (Compare("n", Op.LE, 7), ["e0", "e1"]),
        (Compare("n", Op.IN, (5, 9)), ["e0", "e2"]),
        (Compare("n", Op.NOT_IN, (5, 9)), ["e1"]),
        (Present("ok"), ["e0", "e2"]),
        (Compare("ok", Op.EQ_CS, True), ["e0"]),
        (And((Compare("n", Op.GE, 5), Compare("n", Op.LT, 9))), ["e0", "e1"]),
        (Or((Compare("n", Op.EQ_CS, 5), Compare("n", Op.EQ_CS, 9))), ["e0", "e2"]),
        (Not(Present("ok")), ["e1"]),
        (Compare("company", Op.CO, "%"), []),
        (Compare("seq", Op.GE, 2), ["e1", "e2"]),
        (Compare("channel", Op.EQ_CS, "orders"), ["e0", "e1", "e2"]),
        (Compare("channel", Op.EQ_CS, "absent"), []),
        (Compare("app", Op.EQ_CS, "default"), ["e0", "e1", "e2"]),
        (Compare("app", Op.EQ_CS, "other"), []),
    ],
)
def test_filter_operators(varied: Store, node: object, expected: list[str]) -> None:
    """Each filter operator selects exactly the matching events."""
    assert _bodies(varied, node) == expected


def test_filter_rejects_bad_path(varied: Store) -> None:
    """A body path with characters outside the field-name rule is refused."""
    with pytest.raises(InvalidQuery):
        _bodies(varied, Compare("company'; DROP TABLE events; --", Op.EQ_CS, "x"))


def test_two_store_objects_share_one_log(make_store: StoreFactory) -> None:
    """Two store objects on one vault (two processes' view) keep seqs gap-free."""
    first, second = make_store(), make_store()
    first.save_channel_version("default", "orders", 1, SCHEMA, [], 1)
    first.append([[pending("a")]])
    second.append([[pending("b")]])
    assert [e.seq for e in first.find_events(EventQuery(app="default", sort_by="seq"))] == [1, 2]


def test_concurrent_appends(orders: Store) -> None:
    """Appends from several threads get distinct consecutive seqs."""
    seqs: list[int] = []

    def work(prefix: str) -> None:
        for i in range(50):
            outcome = orders.append([[pending(f"{prefix}{i}")]])[0]
            assert isinstance(outcome, list)
            seqs.append(outcome[0].seq)

    threads = [threading.Thread(target=work, args=(str(n),)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seqs) == list(range(1, 201))


def test_vault_id_is_stable(make_store: StoreFactory) -> None:
    """The vault id is set once and the same for every store object."""
    assert make_store().vault_id() == make_store().vault_id()


def _recomputed_root(store: Store) -> bytes:
    """The root of a tree built from the kept entries, independently of the store's tiles."""
    from trailvault.core.integrity.log import entry_leaf
    from trailvault.core.integrity.merkle import EMPTY_ROOT, node_hash

    events = store.find_events(EventQuery(app="default", sort_by="seq", limit=10_000))
    leaves = [entry_leaf(e, e.seq, hashlib.sha256(_canonical(e.body)).digest()) for e in events]

    def mth(items: list[bytes]) -> bytes:
        if not items:
            return EMPTY_ROOT
        if len(items) == 1:
            return items[0]
        split = 1 << ((len(items) - 1).bit_length() - 1)
        return node_hash(mth(items[:split]), mth(items[split:]))

    return mth(leaves)


def _canonical(body: object) -> bytes:
    from trailvault.core.event import canonical_body

    assert isinstance(body, dict)
    return canonical_body(body)


def _stored_root(store: Store) -> bytes:
    from trailvault.core.integrity.merkle import root_hash, subtree_nodes

    size = store.log_size()
    return root_hash(size, store.tree_nodes(subtree_nodes(0, size)))


def test_tree_grows_with_every_append(orders: Store) -> None:
    """After appends of uneven batches (and a refused one), the stored tree is the tree of the entries."""
    sizes = [1, 3, 16, 1, 40, 7]
    count = 0
    for size in sizes:
        orders.append([[pending(f"e{count + i}", body='{"company":"A"}') for i in range(size)]])
        count += size
        assert _stored_root(orders) == _recomputed_root(orders)
    orders.append([[pending("x", given=True)], [pending("e0", given=True, body='{"company":"Z"}')]])
    assert _stored_root(orders) == _recomputed_root(orders)
    assert orders.log_size() == count + 1


def test_tree_of_two_store_objects(make_store: StoreFactory) -> None:
    """Two writers on one vault keep one tree."""
    first, second = make_store(), make_store()
    first.save_channel_version("default", "orders", 1, SCHEMA, [], 1)
    for i in range(20):
        (first if i % 3 else second).append([[pending(f"e{i}")]])
    assert _stored_root(first) == _stored_root(second) == _recomputed_root(first)


def test_id_of_a_refused_batch_reused_by_a_later_batch(orders: Store) -> None:
    """An id whose first batch of the call is refused, posted again with other content in a later batch
    of the same call, is kept with the later content, and its row matches its leaf."""
    orders.append([[pending("taken", given=True)]])
    outcomes = orders.append(
        [
            [pending("p1", given=True, body='{"company":"first"}', time_us=7), pending("taken", given=True, body="{}")],
            [pending("p1", given=True, body='{"company":"second"}', time_us=9)],
        ]
    )
    assert isinstance(outcomes[0], IdConflict) and outcomes[1] == [Posted("p1", 2)]
    kept = orders.get_event("default", "p1")
    assert kept is not None and (kept.body, kept.time_us) == ({"company": "second"}, 9)
    assert _stored_root(orders) == _recomputed_root(orders)


def test_body_comparisons_across_types_and_null(orders: Store) -> None:
    """Both dialects agree: a range compares like with like; eq null is absent-or-null, ne null is present."""
    bodies = ['{"company":"A","n":5}', '{"company":"B","n":"7"}', '{"company":"C","n":null}', '{"company":"D"}']
    orders.append([[pending(f"t{i}", body=body) for i, body in enumerate(bodies)]])
    assert _bodies(orders, Compare("n", Op.LT, 100)) == ["t0"]
    assert _bodies(orders, Compare("n", Op.GT, 1)) == ["t0"]
    assert _bodies(orders, Compare("n", Op.GE, "0")) == ["t1"]
    assert _bodies(orders, Compare("n", Op.EQ, None)) == ["t2", "t3"]
    assert _bodies(orders, Compare("n", Op.NE, None)) == ["t0", "t1"]
    with pytest.raises(InvalidQuery, match="not a number"):
        _bodies(orders, Compare("n", Op.EQ, float("inf")))


def test_eq_on_text_does_not_match_other_types(store: Store) -> None:
    """eq "1" matches the text "1" only, not the number 1 or true, on every backend."""
    store.save_channel_version("default", "mixed", 1, SCHEMA, [("company",)], 1)
    store.append([[
        pending("n", body='{"company":1}', channel="mixed"),
        pending("b", body='{"company":true}', channel="mixed"),
        pending("t", body='{"company":"1"}', channel="mixed"),
    ]])  # fmt: skip
    found = store.find_events(EventQuery(app="default", channel="mixed", filter=Compare("company", Op.EQ, "1")))
    assert [event.id for event in found] == ["t"]


def test_entry_columns_hold_what_find_entries_finds(make_store: StoreFactory) -> None:
    """entry_columns is find_entries as Arrow columns: same rows, order, paging and app bounds; hex digests."""
    store = make_store()
    for app in ("default", "other"):
        for channel in ("orders", "refunds"):
            store.save_channel_version(app, channel, 1, SCHEMA, [("company",)], 1)
    store.append(
        [
            [
                pending(f"o{i}", channel="orders", time_us=100 - i, body=f'{{"company":"{c}"}}')
                for i, c in enumerate("AB")
            ],
            [pending("r1", channel="refunds", body='{"company":"é\\"x"}')],
            [pending("x1", app="other")],
            [pending("o2", channel="orders", body='{"company":null}')],
        ]
    )
    query = EventQuery(app="default", filter=Compare("seq", Op.GE, 1), sort_by="seq", limit=3)
    for page in (query, query.starting_after((3, 3))):
        table = store.entry_columns(page)
        entries = store.find_entries(page)
        assert table.column_names == ["seq", "id", "app", "channel", "time", "received", "body", "body_sha256"]
        assert table.to_pylist() == [
            {
                "seq": e.seq, "id": e.id, "app": e.app, "channel": e.channel, "time": e.time_us,
                "received": e.received_us, "body": e.body_json, "body_sha256": e.body_sha256.hex(),
            }
            for e in entries
        ]  # fmt: skip
    assert [row["id"] for row in store.entry_columns(query).to_pylist()] == ["o0", "o1", "r1"]
    assert [row["id"] for row in store.entry_columns(query.starting_after((3, 3))).to_pylist()] == ["o2"]
    assert store.entry_columns(EventQuery(app="nobody", sort_by="seq", limit=5)).num_rows == 0


@pytest.mark.parametrize("expected", [0, 10**9], ids=["short", "long"])
def test_entry_pages_are_entry_columns_page_after_page(make_store: StoreFactory, expected: int) -> None:
    """entry_pages gives entry_columns' pages, however long the listing is expected to be (SQLite
    reads a long one in a separate process): same rows, order, page sizes; filters bound, not lost."""
    store = make_store()
    for app in ("default", "other"):
        for channel in ("orders", "refunds"):
            store.save_channel_version(app, channel, 1, SCHEMA, [("company",)], 1)
    store.append(
        [
            [pending(f"o{i}", channel="orders", body=f'{{"company":"{"AB"[i % 2]}é"}}') for i in range(23)],
            [pending("x1", app="other")],
            [pending(f"r{i}", channel="refunds", body='{"company":"A\\"q"}') for i in range(4)],
        ]
    )
    filters = [
        Compare("seq", Op.GE, 2),
        And((Compare("company", Op.EQ, "Bé"), Compare("seq", Op.LE, 20))),
        Compare("channel", Op.EQ, "refunds"),
        Compare("company", Op.EQ, "nobody"),
    ]
    for condition in filters:
        query = EventQuery(app="default", filter=condition, sort_by="seq", limit=5)
        pages = [table.to_pylist() for table in store.entry_pages(query, expected=expected)]
        wanted = []
        page = query
        while True:
            table = store.entry_columns(page)
            wanted.append(table.to_pylist())
            if table.num_rows < page.limit:
                break
            page = page.starting_after((table.column("seq")[-1].as_py(),) * 2)
        rows = [row for part in pages for row in part]
        assert rows == [row for part in wanted for row in part], condition
        assert all(len(part) == 5 for part in pages[:-1]) and all(len(part) <= 5 for part in pages)
        assert all(row["app"] == "default" for row in rows)
    found = [
        row
        for part in store.entry_pages(
            EventQuery(app="default", filter=filters[1], sort_by="seq", limit=5), expected=expected
        )
        for row in part.to_pylist()
    ]
    assert [row["id"] for row in found] == ["o1", "o3", "o5", "o7", "o9", "o11", "o13", "o15", "o17", "o19"]
    with pytest.raises(InvalidQuery, match="sort_by"):
        list(store.entry_pages(EventQuery(app="default", sort_by="time", limit=5), expected=expected))


def test_entry_columns_leave_no_rows_for_a_collection_to_scan(make_store: StoreFactory) -> None:
    """A page's row tuples are freed before collection resumes, so no collection scans them
    (they took a third of a page's time, and reached full-heap collections)."""
    store = make_store()
    store.save_channel_version("default", "orders", 1, SCHEMA, [("company",)], 1)
    store.append([[pending(f"o{i}", channel="orders", body='{"company":"A"}') for i in range(1500)]])
    query = EventQuery(app="default", sort_by="seq", limit=2000)
    store.entry_columns(query)  # the first call loads pyarrow; that is not what is looked at
    scanned: list[int] = []

    def count_young(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            scanned.append(len(gc.get_objects(generation=info["generation"])))

    gc.collect()
    gc.callbacks.append(count_young)
    try:
        table = store.entry_columns(query)
    finally:
        gc.callbacks.remove(count_young)
    assert table.num_rows == 1500 and gc.isenabled()
    assert all(count < 500 for count in scanned), scanned


def _kept(size: int, timestamp: int) -> StoredCheckpoint:
    return StoredCheckpoint(size, bytes([size]) * 32, timestamp, f"note of size {size} signed at {timestamp}\n")


def test_checkpoints_are_all_kept_and_found_by_size(make_store: StoreFactory) -> None:
    """Every checkpoint is kept; latest is the largest size (latest signed), covering the earliest at least
    that size, of_size the latest of exactly it; another store object sees them."""
    store = make_store()
    assert store.latest_checkpoint() is None and store.all_checkpoints() == []
    for size, timestamp in [(2, 10), (5, 15), (2, 20), (3, 30), (5, 40)]:
        store.save_checkpoint(_kept(size, timestamp))
    other = make_store()
    assert other.all_checkpoints() == [_kept(*kept) for kept in [(2, 10), (2, 20), (3, 30), (5, 15), (5, 40)]]
    assert other.latest_checkpoint() == _kept(5, 40)
    assert other.checkpoint_covering(1) == _kept(2, 10)
    assert other.checkpoint_covering(3) == _kept(3, 30)
    assert other.checkpoint_covering(4) == _kept(5, 15)
    assert other.checkpoint_covering(6) is None
    assert other.checkpoint_of_size(2) == _kept(2, 20)
    assert other.checkpoint_of_size(4) is None


def test_a_vault_wide_value_is_set_once(make_store: StoreFactory) -> None:
    """set_meta records a value once: the same value again is a no-op, another raises Conflict and keeps the first."""
    store = make_store()
    assert store.meta("verifier_key") is None
    store.set_meta("verifier_key", "key one")
    store.set_meta("verifier_key", "key one")
    with pytest.raises(Conflict):
        make_store().set_meta("verifier_key", "key two")
    assert make_store().meta("verifier_key") == "key one"


def test_only_an_empty_vault_adopts_another_vaults_id(make_store: StoreFactory) -> None:
    """adopt_vault_id gives an empty vault the id; once it holds a channel, it is refused and the id stays."""
    store = make_store()
    store.adopt_vault_id("00000000-0000-4000-8000-000000000001")
    assert make_store().vault_id() == "00000000-0000-4000-8000-000000000001"
    store.save_channel_version("default", "orders", 1, SCHEMA, [], 1)
    with pytest.raises(Conflict):
        store.adopt_vault_id("00000000-0000-4000-8000-000000000002")
    assert store.vault_id() == "00000000-0000-4000-8000-000000000001"
