"""Print the microseconds one Schema.validate call takes (not a test; run it by hand).

    PYTHONPATH=src python tests/schema/speed_probe.py

The body has 20 fields (the schema 21), two of them nested records (one a REPEATED record of two
elements), a timestamp, and values that need no normalising: the common case.
"""

from __future__ import annotations

import timeit
from typing import Any

from trailvault.core.schema import parse_schema

SCHEMA: list[dict[str, Any]] = [
    {"name": "time", "type": "TIMESTAMP", "mode": "REQUIRED"},
    {"name": "company", "type": "STRING", "mode": "REQUIRED"},
    {"name": "amount", "type": "FLOAT"},
    {"name": "count", "type": "INTEGER"},
    {"name": "ok", "type": "BOOLEAN"},
    *({"name": f"s{i}", "type": "STRING"} for i in range(11)),
    {"name": "n1", "type": "INTEGER"},
    {"name": "f1", "type": "FLOAT"},
    {"name": "missing", "type": "STRING"},
    {
        "name": "user",
        "type": "RECORD",
        "nested": [
            {"name": "email", "type": "STRING"},
            {"name": "roles", "type": "STRING", "mode": "REPEATED"},
            {"name": "provider", "type": "RECORD", "nested": [{"name": "name", "type": "STRING"}]},
        ],
    },
    {
        "name": "taxes",
        "type": "RECORD",
        "mode": "REPEATED",
        "nested": [{"name": "salestax", "type": "FLOAT"}, {"name": "taxrate", "type": "FLOAT"}],
    },
]

BODY: dict[str, Any] = {
    "time": "2024-12-30T09:00:00.000000Z",
    "company": "Amalto",
    "amount": 125.5,
    "count": 3,
    "ok": True,
    **{f"s{i}": f"value {i}" for i in range(11)},
    "n1": 42,
    "f1": 0.25,
    "user": {"email": "a@example.org", "roles": ["admin", "audit"], "provider": {"name": "oidc"}},
    "taxes": [{"salestax": 10.0, "taxrate": 0.2}, {"salestax": 5.0, "taxrate": 0.1}],
}


def main() -> None:
    schema = parse_schema(SCHEMA)
    assert schema.validate(BODY) is BODY
    # Interleaved short runs, min and median: shared machines are noisy, often by 2x.
    cases = {"no normalising": BODY, "int amount -> float": {**BODY, "amount": 125}}
    timings: dict[str, list[float]] = {label: [] for label in cases}
    rounds = 5_000
    for _ in range(40):
        for label, body in cases.items():
            seconds = timeit.timeit(lambda b=body: schema.validate(b), number=rounds)
            timings[label].append(seconds / rounds * 1e6)
    for label, samples in timings.items():
        samples.sort()
        print(f"{label}: {samples[0]:.2f} µs per validation (median {samples[len(samples) // 2]:.2f})")


if __name__ == "__main__":
    main()
