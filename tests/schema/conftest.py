"""The two Platform 6 example schemas, as the users of the original wrote them."""

from __future__ import annotations

from typing import Any

import pytest

PLATFORM6_BIGQUERY: list[dict[str, Any]] = [
    {"name": "company", "type": "STRING", "mode": "REQUIRED"},
    {"name": "amount", "type": "FLOAT", "mode": "NULLABLE"},
    {
        "name": "taxes",
        "type": "RECORD",
        "mode": "REPEATED",
        "nested": [
            {"name": "salestax", "type": "FLOAT", "mode": "NULLABLE"},
            {"name": "taxrate", "type": "FLOAT", "mode": "NULLABLE"},
        ],
    },
]

PLATFORM6_ELASTICSEARCH: dict[str, Any] = {
    "mappings": {
        "myindex": {
            "_all": {"enabled": False},
            "properties": {
                "timestamp": {"type": "date", "format": "YYYY-MM-dd HH:mm:ss.SSSZ"},
                "company": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
                "amount": {"type": "float"},
                "taxes": {
                    "type": "nested",
                    "properties": {"salestax": {"type": "float"}, "taxrate": {"type": "float"}},
                },
            },
        }
    }
}


@pytest.fixture
def bigquery_example() -> list[dict[str, Any]]:
    return PLATFORM6_BIGQUERY


@pytest.fixture
def elasticsearch_example() -> dict[str, Any]:
    return PLATFORM6_ELASTICSEARCH
