"""Networking: the network Protocol, the libp2p adapter (the one module that touches
py-libp2p), gossip, request/response, peer management, and an in-memory network for
tests. Imports ``chain`` only."""
