"""State sync between peers (§11.4, §11.5): snapshots and light blocks over
request/response.

- ``/bizra/<c>/snapshots/1``: the request is CBOR ``null``; the answer lists the
  snapshots the peer holds, ``[descriptor, ...]`` (at most :data:`MAX_LISTED`, most
  recent first), each ``[height, format, chunks, manifest_hash]``.
- ``/bizra/<c>/snapshot-manifest/1``: ``[height, format]`` asks for that snapshot's
  manifest; the answer is the manifest's encoding, or ``null``.
- ``/bizra/<c>/snapshot-chunk/1``: ``[height, format, index]`` asks for one chunk; the
  answer is the chunk's encoding, or ``null``.
- ``/bizra/<c>/light-blocks/1``: a height asks for ``[header, commit, validators]`` of
  that height, or ``null``.

Every request is at most :data:`MAX_REQUEST_BYTES` and every answer is bounded
(:data:`MAX_LIST_BYTES`, ``MAX_MANIFEST_BYTES``, ``MAX_CHUNK_BYTES``,
:data:`MAX_LIGHT_BLOCK_BYTES`); the host's per-peer request rate limit applies to each.
What a peer answers is checked before use: a list, manifest or chunk that does not
decode, a manifest that is not the one its descriptor names, and a light block whose
commit does not finalize its header for its validators cost the peer
``INVALID_MESSAGE_PENALTY``; a manifest or chunk that decodes but is not the state the
verified header commits to, and a light block whose header names another validator set
than the trusted one (checked before its signatures), are proof of a lie, and ban the
peer at once.
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import sha256
from typing import Protocol, TypeVar

import trio

from chain.codec import dumps, expect_array, expect_list, expect_uint, loads_canonical
from chain.errors import DecodeError, InvalidBlock, InvalidProof, NetworkError
from chain.lightblock import LightBlock, check_successor
from chain.sizes import VALIDATORS_LIMIT
from chain.snapshot import (
    FORMAT,
    MAX_CHUNK_BYTES,
    MAX_MANIFEST_BYTES,
    Descriptor,
    Manifest,
    decode_chunk,
    manifest_root,
    verify_chunk,
)
from p2p.network import INVALID_MESSAGE_PENALTY, Network, request_protocol
from p2p.peers import PeerId

MAX_LISTED = 16
"""Snapshots a list answer holds at most."""
MAX_REQUEST_BYTES = 64
MAX_LIST_BYTES = 4 << 10
MAX_LIGHT_BLOCK_BYTES = 1024 + VALIDATORS_LIMIT * 200
"""A header, and a commit entry (about 80 bytes) and a member (about 45) per validator."""
REQUEST_TIMEOUT_S = 20.0
_T = TypeVar("_T")


class SnapshotSource(Protocol):
    """What this node serves: its snapshots (``storage.snapshots.SnapshotStore``) and
    light blocks of the heights it holds."""

    def descriptors(self) -> list[Descriptor]: ...

    def manifest(self, height: int) -> bytes | None: ...

    def chunk(self, height: int, index: int) -> bytes | None: ...

    def light_block(self, height: int) -> LightBlock | None: ...


class SnapshotExchange:
    """Serves this node's snapshots and light blocks, and fetches peers' (see the
    module docstring)."""

    def __init__(self, network: Network, chain_id: str, source: SnapshotSource) -> None:
        self.network = network
        self.chain_id = chain_id
        self.source = source
        self.list_protocol = request_protocol(chain_id, "snapshots")
        self.manifest_protocol = request_protocol(chain_id, "snapshot-manifest")
        self.chunk_protocol = request_protocol(chain_id, "snapshot-chunk")
        self.light_protocol = request_protocol(chain_id, "light-blocks")
        network.set_handler(self.list_protocol, self._serve_list, max_request_bytes=MAX_REQUEST_BYTES)
        network.set_handler(self.manifest_protocol, self._serve_manifest, max_request_bytes=MAX_REQUEST_BYTES)
        network.set_handler(self.chunk_protocol, self._serve_chunk, max_request_bytes=MAX_REQUEST_BYTES)
        network.set_handler(self.light_protocol, self._serve_light_block, max_request_bytes=MAX_REQUEST_BYTES)

    # --- serving -------------------------------------------------------------------

    async def _serve_list(self, peer: PeerId, request: bytes) -> bytes:
        _decode_request(request, "snapshots request", _expect_null)
        return dumps([d.to_cbor() for d in self.source.descriptors()[:MAX_LISTED]])

    async def _serve_manifest(self, peer: PeerId, request: bytes) -> bytes:
        height, fmt = _decode_request(request, "snapshot-manifest request",
                                      lambda obj: [expect_uint(x, "manifest request field")
                                                   for x in expect_array(obj, 2, "manifest request")])
        manifest = self.source.manifest(height) if fmt == FORMAT else None
        return dumps(None) if manifest is None else manifest

    async def _serve_chunk(self, peer: PeerId, request: bytes) -> bytes:
        height, fmt, index = _decode_request(request, "snapshot-chunk request",
                                             lambda obj: [expect_uint(x, "chunk request field")
                                                          for x in expect_array(obj, 3, "chunk request")])
        chunk = await trio.to_thread.run_sync(self.source.chunk, height, index) if fmt == FORMAT else None
        return dumps(None) if chunk is None else chunk

    async def _serve_light_block(self, peer: PeerId, request: bytes) -> bytes:
        height = _decode_request(request, "light-blocks request", lambda obj: expect_uint(obj, "height"))
        block = self.source.light_block(height)
        return dumps(None) if block is None else block.encode()

    # --- fetching ------------------------------------------------------------------

    async def list_snapshots(self, peer: PeerId) -> list[Descriptor]:
        """The snapshots ``peer`` lists. NetworkError if the request fails or the answer
        does not decode (the peer is penalized)."""
        raw = await self.network.request(peer, self.list_protocol, dumps(None),
                                         max_response_bytes=MAX_LIST_BYTES, timeout=REQUEST_TIMEOUT_S)
        try:
            return [Descriptor.from_cbor(d) for d in expect_list(loads_canonical(raw, "snapshots response"),
                                                                 "snapshots response", MAX_LISTED)]
        except DecodeError as exc:
            raise self._fault(peer, f"unreadable snapshot list: {exc}") from None

    async def fetch_manifest(self, peer: PeerId, descriptor: Descriptor, app_hash: bytes) -> Manifest | None:
        """The manifest of ``descriptor`` from ``peer``, checked against its hash and
        against ``app_hash`` (the verified root of the snapshot's state); None if the
        peer does not have it. NetworkError if the request fails or the answer is wrong
        (the peer is penalized, or banned for a manifest of another state)."""
        raw = await self.network.request(peer, self.manifest_protocol, dumps([descriptor.height, FORMAT]),
                                         max_response_bytes=MAX_MANIFEST_BYTES, timeout=REQUEST_TIMEOUT_S)
        if raw == dumps(None):
            return None
        if sha256(raw).digest() != descriptor.manifest_hash:
            raise self._fault(peer, f"a manifest of height {descriptor.height} that is not the one it listed")
        try:
            manifest = Manifest.decode(raw)
        except DecodeError as exc:
            raise self._fault(peer, f"unreadable manifest: {exc}") from None
        if (manifest.height, manifest.chunks) != (descriptor.height, descriptor.chunks):
            raise self._fault(peer, f"a manifest of height {manifest.height} and {manifest.chunks} chunks "
                                    f"listed as {descriptor.height} and {descriptor.chunks}")
        root = await trio.to_thread.run_sync(manifest_root, manifest)
        if root != app_hash:
            raise self._liar(peer, f"a snapshot of height {descriptor.height} whose root is not the chain's")
        return manifest

    async def fetch_chunk(self, peer: PeerId, manifest: Manifest,
                          index: int) -> list[tuple[bytes, bytes]] | None:
        """Chunk ``index`` of the snapshot of ``manifest`` (a verified one) from ``peer``,
        verified against it; None if the peer does not have it. NetworkError if the
        request fails or the chunk does not decode (the peer is penalized) or is not the
        state's (the peer is banned)."""
        raw = await self.network.request(peer, self.chunk_protocol, dumps([manifest.height, FORMAT, index]),
                                         max_response_bytes=MAX_CHUNK_BYTES, timeout=REQUEST_TIMEOUT_S)

        def check() -> list[tuple[bytes, bytes]] | None:
            if raw == dumps(None):
                return None
            pairs = decode_chunk(raw)
            verify_chunk(manifest, index, pairs)
            return pairs

        try:
            return await trio.to_thread.run_sync(check)
        except DecodeError as exc:
            raise self._fault(peer, f"unreadable chunk {index} of height {manifest.height}: {exc}") from None
        except InvalidProof as exc:
            raise self._liar(peer, f"a chunk that is not the chain's state: {exc}") from None

    async def fetch_light_block(self, peer: PeerId, height: int,
                                set_hash: bytes | None = None) -> LightBlock | None:
        """The light block of ``height`` from ``peer``, self-consistent (its commit
        finalizes its header for its validators) and, given ``set_hash``, signed by the
        set of that hash; None if the peer does not have it. NetworkError if the request
        fails or the answer is wrong (the peer is penalized), or, checked before any
        signature, its header names another set than ``set_hash`` (a header not of this
        chain: the peer is banned). Without ``set_hash``, whether its validators are the
        ones to trust is the caller's question."""
        raw = await self.network.request(peer, self.light_protocol, dumps(height),
                                         max_response_bytes=MAX_LIGHT_BLOCK_BYTES, timeout=REQUEST_TIMEOUT_S)
        try:
            obj = loads_canonical(raw, "light block")
            block = None if obj is None else LightBlock.from_cbor(obj)
        except DecodeError as exc:
            raise self._fault(peer, f"unreadable light block: {exc}") from None
        if block is None:
            return None
        if set_hash is not None:
            try:
                check_successor(block, set_hash)
            except InvalidBlock as exc:
                raise self._liar(peer, f"a light block not of this chain: {exc}") from None
        try:
            await trio.to_thread.run_sync(block.check, self.chain_id, height)
        except InvalidBlock as exc:
            raise self._fault(peer, f"a light block that does not verify: {exc}") from None
        return block

    def _fault(self, peer: PeerId, problem: str) -> NetworkError:
        self.network.penalize(peer, INVALID_MESSAGE_PENALTY, problem)
        return NetworkError(f"peer {peer}: {problem}")

    def _liar(self, peer: PeerId, problem: str) -> NetworkError:
        self.network.ban(peer, problem)
        return NetworkError(f"peer {peer} banned: {problem}")


def _expect_null(obj: object) -> None:
    if obj is not None:
        raise DecodeError("expected null")


def _decode_request(request: bytes, what: str, parse: Callable[[object], _T]) -> _T:
    """``parse`` of the request's CBOR; NetworkError (the handler's refusal) otherwise."""
    try:
        return parse(loads_canonical(request, what))
    except DecodeError as exc:
        raise NetworkError(f"{what}: {exc}") from None
