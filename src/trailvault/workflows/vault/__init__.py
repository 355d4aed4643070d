"""The vault: one app's view of one store, its halves (proving, API keys, archiving) and their helpers."""
