"""The node: configuration, the service tree, mempool, block sync, the JSON-RPC server,
metrics, logging, the ``bizra-node`` command line and the devnet launcher. It wires the
other packages together; nothing imports it."""
