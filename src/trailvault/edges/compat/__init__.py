"""Drop-in bindings for the tools trailvault replaces."""
