"""Export: a query's events to Parquet, CSV and JSONL.gz files with a manifest that proves them."""
