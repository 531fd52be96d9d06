"""Persistence: the key/value Protocol, its LevelDB adapter and an in-memory backend, the
one schema module that builds every key, and the stores built on them. Imports ``chain``
only."""
