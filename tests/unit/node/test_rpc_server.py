"""The RPC server's start: a port that is taken is refused with a message that says
which and what to change."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from chain.errors import NetworkError
from node.rpc.server import run_server


async def test_a_taken_rpc_port_is_refused_with_a_clear_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app: Any = None  # never reached: the port is checked first
        with pytest.raises(NetworkError, match=f"cannot serve RPC on 127.0.0.1:{port}.*BIZRA_RPC_PORT"):
            await run_server(app, "127.0.0.1", port)
