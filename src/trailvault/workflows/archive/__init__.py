"""Archive files: writing a batch with its proving manifest, verifying them offline, automated archiving."""
