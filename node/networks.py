"""The public networks a node can join by name (``--network``): each one's genesis
(shipped in the package), the hash that genesis must have, and its bootnodes.

The hash is pinned here, in the code, so that a genesis file changed by accident or on
purpose is refused at start rather than starting a different chain: a node whose home
is configured for a network checks its ``genesis.json`` against the pin every time it
starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

from chain.errors import BizraError
from chain.genesis import genesis_hash


class UnknownNetwork(BizraError):
    """No network of that name; the message lists the known ones."""


class GenesisMismatch(BizraError):
    """A genesis that does not hash to its network's pinned hash."""


@dataclass(frozen=True, slots=True)
class PublicNetwork:
    name: str
    genesis_hash: bytes
    bootnodes: tuple[str, ...]

    def genesis_json(self) -> bytes:
        """The shipped genesis file, as it is in the package."""
        return files("node").joinpath("genesis", f"{self.name}.json").read_bytes()

    def check(self, genesis_json: bytes, where: str) -> None:
        """GenesisMismatch unless ``genesis_json`` (read from ``where``) is this
        network's genesis, byte for byte as far as its hash goes."""
        found = genesis_hash(genesis_json)
        if found != self.genesis_hash:
            raise GenesisMismatch(
                f"{where} is not the genesis of {self.name}: it hashes to {found.hex()}, not to the "
                f"pinned {self.genesis_hash.hex()}. The file was changed; restore it from the "
                f"release (bizra-node init --network {self.name} writes it) or start another chain.")


NETWORKS = {
    network.name: network for network in (
        PublicNetwork(
            name="bizra-testnet-001",
            genesis_hash=bytes.fromhex("bf35493f5b73b7cb548d87a42783a85948ef322b43d00920e52181ac51c7ee50"),
            bootnodes=(
                "/dns4/boot-0.testnet.bizra.network/tcp/26656/p2p/12D3KooWSxJdZEM8Waw92rPRzVjx9yMmEMtsk96DQD7YjVHXMjox",
                "/dns4/boot-1.testnet.bizra.network/tcp/26656/p2p/12D3KooWM1y7dGgzUv5VzRbN1JHVzTcC6KvrMLJ9cP1xVKY1unt3",
            ),
        ),
    )
}


def network(name: str) -> PublicNetwork:
    """The network ``name``; UnknownNetwork if there is none."""
    found = NETWORKS.get(name)
    if found is None:
        raise UnknownNetwork(f"no network {name!r}; known: {', '.join(sorted(NETWORKS))} "
                             "(a local chain needs no name: bizra-node init or devnet)")
    return found
