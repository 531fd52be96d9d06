"""Tendermint BFT consensus: the pure state machine, vote sets, proposer selection and
evidence, driven by one trio task; the driver, the write-ahead log and the signer state
are its only I/O. Imports ``chain`` only."""
