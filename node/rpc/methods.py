"""The JSON-RPC methods (§9): CometBFT v0.38's, with its parameter names and result
shapes, and BIZRA's own under the ``bizra_`` prefix.

A method takes its parameters by name (``{"height": "5"}``) or in order
(``["5"]``); heights and counts may be JSON numbers or decimal strings; hashes are hex;
txs are base64. A parameter that is missing, unknown or malformed is an RpcError with
code -32602 whose message says which and why.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import inspect
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from chain.address import format_address, parse_address
from chain.codec import dumps
from chain.crypto import address_of
from chain.errors import BizraError, InvalidAddress, InvalidBlock, InvalidTx
from chain.ledger import Ledger
from chain.poi import ATTESTATION_EXPIRED, ATTESTATION_FINALIZED, ATTESTATION_PENDING, ATTESTATION_REJECTED
from chain.sizes import HASH_LEN
from chain.timefmt import format_rfc3339_ns
from chain.types import Block, CommitFlag, TxResult, Validator, tx_hash
from consensus.votes import VoteSet
from node.mempool import MempoolFull
from node.rpc import jsontext, shapes
from node.rpc.shapes import JSON, b64, hex_upper
from node.view import NodeView
from p2p.network import peer_of
from p2p.peers import PeerId
from storage.store import Store

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700, -32600, -32601, -32602, -32603)
CODE_INVALID_TX, CODE_MEMPOOL_FULL = 100, 101
"""``check_tx`` codes of a tx the mempool refused (codespace ``mempool``)."""
MAX_BLOCKCHAIN_RANGE = 20
SIGNED_LOOKBACK = 100
"""How far back ``bizra_validators`` looks for a validator's last signature."""
GENESIS_CHUNK_BYTES = 16 * 1024 * 1024
"""CometBFT's genesis chunk size."""
_HEIGHT_CONDITION = re.compile(r"^\s*block\.height\s*(<=|>=|=|<|>)\s*(\d{1,19})\s*$")
RENDERED_RESULTS = 16
RENDERED_BLOCK_BYTES = 32 * 1024 * 1024
"""The answers about committed heights kept rendered (``block``, ``block_results`` and
``commit`` at a height never change once the next block exists; clients ask for the
latest ones again and again): at most this many, for blocks of this many bytes in all."""
PROTOCOL_VERSION = {"p2p": "8", "block": "1", "app": "1"}
"""CometBFT's ProtocolVersion of this node (``node_info.protocol_version``)."""
COMETBFT_STEPS = {"new_height": 1, "propose": 3, "prevote": 4, "precommit": 6}
"""CometBFT's RoundStepType numbers of the steps (``height/round/step`` gives one)."""
ATTESTATION_STATUS = {ATTESTATION_PENDING: "pending", ATTESTATION_FINALIZED: "finalized",
                      ATTESTATION_REJECTED: "rejected", ATTESTATION_EXPIRED: "expired"}


class RpcError(Exception):
    """A JSON-RPC error object: ``code``, ``message`` and ``data`` (the details)."""

    def __init__(self, code: int, message: str, data: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> JSON:
        return {"code": self.code, "message": self.message, "data": self.data}


MAX_BULK_TXS = 10_000
"""The most txs one ``bizra_broadcast_txs`` call carries (the body limit, 1 MiB, holds
about 6,000 transfers)."""


def invalid(data: str) -> RpcError:
    return RpcError(INVALID_PARAMS, "Invalid params", data)


# --- parameters ------------------------------------------------------------------------


def _int(name: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        try:
            return int(value)
        except ValueError:  # digits int() does not read: ², or more than 4,300 of them
            pass
    elif type(value) is int and value >= 0:
        return value
    raise invalid(f"{name}: expected a non-negative integer (a number or a decimal string), got {value!r}")


def _hash(name: str, value: Any) -> bytes:
    text = value[2:] if isinstance(value, str) and value[:2] in ("0x", "0X") else value
    try:
        data = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        data = b""
    if len(data) != HASH_LEN:
        raise invalid(f"{name}: expected {2 * HASH_LEN} hex digits, got {value!r}")
    return data


def _tx(value: Any) -> bytes:
    if not isinstance(value, str):
        raise invalid(f"tx: expected base64 text, got {value!r}")
    if value[:2] in ("0x", "0X"):  # URI form
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            raise invalid("tx: not valid hex after 0x") from None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("tx: not valid base64") from None


def _address(value: Any) -> bytes:
    if not isinstance(value, str):
        raise invalid(f"address: expected bizra1… or 40 hex digits, got {value!r}")
    try:
        return parse_address(value)
    except InvalidAddress as exc:
        raise invalid(f"address: {exc}") from None


class Methods:
    """The methods of one node, by name."""

    def __init__(self, node: NodeView) -> None:
        self.node = node
        self.table: dict[str, Callable[..., Awaitable[JSON]]] = {
            name[len("m_"):]: getattr(self, name) for name in dir(self) if name.startswith("m_")}
        # Each method's parameter names, and the required ones, read once (inspecting a
        # signature per request cost a tenth of a loaded node's time).
        self._params: dict[str, tuple[list[str], list[str]]] = {}
        for name, fn in self.table.items():
            parameters = inspect.signature(fn).parameters
            self._params[name] = (list(parameters), [n for n, p in parameters.items()
                                                     if p.default is inspect.Parameter.empty])
        self._rendered: OrderedDict[tuple[str, int], tuple[JSON, int]] = OrderedDict()
        self._rendered_bytes = 0
        self._signed: tuple[int, dict[bytes, int]] = (-1, {})

    async def call(self, method: str, params: Any) -> JSON:
        """Run ``method``; RpcError for an unknown method or bad parameters."""
        fn = self.table.get(method)
        if fn is None:
            raise RpcError(METHOD_NOT_FOUND, "Method not found", f"no method {method!r}")
        names, required = self._params[method]
        if params is None:
            kwargs: dict[str, Any] = {}
        elif isinstance(params, list):
            if len(params) > len(names):
                raise invalid(f"{method} takes at most {len(names)} parameters, got {len(params)}")
            kwargs = dict(zip(names, params, strict=False))
        elif isinstance(params, dict):
            unknown = sorted(set(params) - set(names))
            if unknown:
                raise invalid(f"unknown parameter {unknown[0]!r} (takes: {', '.join(names) or 'none'})")
            kwargs = params
        else:
            raise invalid("params must be an object or an array")
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        missing = [n for n in required if n not in kwargs]
        if missing:
            raise invalid(f"missing parameter {missing[0]!r}")
        return await fn(**kwargs)

    async def preverify(self, batch: list[Any]) -> None:
        """Before a batch is answered one request at a time: the signatures of all its
        broadcast txs are checked together (one worker-thread hop, not one per tx). Not
        while the node is busy: it will refuse them."""
        if self.node.busy() is not None:
            return
        raws = []
        for request in batch:
            params = request.get("params") if isinstance(request, dict) else None
            if isinstance(request, dict) and str(request.get("method", "")).startswith("broadcast_tx") \
                    and isinstance(params, dict):
                try:
                    raws.append(_tx(params.get("tx")))
                except RpcError:
                    continue  # answered on its own
        if raws:
            await self.node.mempool.preverify(raws)

    # --- helpers ---------------------------------------------------------------------

    @property
    def _store(self) -> Store:
        return self.node.store

    def _height(self, value: Any) -> int:
        """A height whose block this node holds: ``value``, or the latest for none or 0
        (at genesis, the latest, which has no block). InvalidParams above the latest or
        below the lowest block held (``blocks.base``), naming it: right after a restore
        the latest itself is below it (its block is kept as the anchor, not served)."""
        store = self._store
        height = 0 if value is None else _int("height", value)
        if height == 0:
            height = int(store.height)
            if store.at_genesis:
                return height
            if height < store.blocks.base:
                raise invalid(f"the latest height {height} is not available (restored from a snapshot of "
                              f"it, no block since), lowest height is {store.blocks.base}")
            return height
        if height > store.height:
            raise invalid(f"height {height} must be less than or equal to the current blockchain "
                          f"height {store.height}")
        if height < store.blocks.base:
            raise invalid(f"height {height} is not available, lowest height is {store.blocks.base}")
        return height

    def _block(self, height: int) -> Block:
        block = self._store.blocks.block(height)
        if block is None:
            raise invalid(f"height {height}: no block yet" if height else "there is no block yet")
        return block

    def _final(self, method: str, height: int, render: Callable[[], JSON]) -> JSON:
        """``render()``'s answer about ``height``, kept for the next call (callers must
        not change it) once it is final: the next block is stored (for ``block``, once
        the block is)."""
        key = (method, height)
        kept = self._rendered.get(key)
        if kept is not None:
            self._rendered.move_to_end(key)
            return kept[0]
        store = self._store
        final = height < store.height or method == "block"  # read first: blocks commit meanwhile
        answer = render()
        if final:
            weight = store.blocks.block_size(height) or 0
            self._rendered[key] = (answer, weight)
            self._rendered_bytes += weight
            while len(self._rendered) > RENDERED_RESULTS or (self._rendered_bytes > RENDERED_BLOCK_BYTES
                                                             and len(self._rendered) > 1):
                self._rendered_bytes -= self._rendered.popitem(last=False)[1][1]
        return answer

    def _addresses(self, height: int) -> list[bytes]:
        return [address_of(m.pubkey) for m in self.node.chain.members(height)]

    # --- info ------------------------------------------------------------------------

    async def m_health(self) -> JSON:
        return {}

    async def m_status(self) -> JSON:
        node = self.node
        store = self._store
        latest = store.blocks.block(store.height)
        # The lowest block served; none at genesis, nor right after a restore (block base
        # above the latest height), when the earliest fields are CometBFT's of an empty
        # block store: height 0, no hashes.
        earliest = store.blocks.block(store.blocks.base) if latest and store.blocks.base <= store.height \
            else None
        validator: JSON = {"address": "", "pub_key": None, "voting_power": "0"}
        if node.validator_key is not None:
            key = node.validator_key.public_key
            power = next((m.power for m in node.chain.members(store.height + 1) if m.pubkey == key), 0)
            validator = {"address": hex_upper(address_of(key)), "pub_key": shapes.pub_key(key),
                         "voting_power": str(power)}

        def when(b: Block | None) -> str:
            return format_rfc3339_ns(b.header.time_ns if b else node.genesis.genesis_time_ns)

        return {
            "node_info": {
                "protocol_version": dict(PROTOCOL_VERSION),
                "id": node.network.node_id(node.network.local_id),
                "listen_addr": ",".join(node.advertised_addresses()),
                "network": node.chain_id,
                "version": "bizra-node",
                "channels": "",
                "moniker": node.config.moniker,
                "other": {"tx_index": "on",
                          "rpc_address": f"tcp://{node.config.rpc.host}:{node.config.rpc.port}",
                          "genesis_hash": hex_upper(node.genesis_hash),
                          "peer_id": node.network.local_id},
            },
            "sync_info": {
                "latest_block_hash": hex_upper(latest.block_id()) if latest else "",
                "latest_app_hash": hex_upper(store.app_hash),
                "latest_block_height": str(store.height),
                "latest_block_time": when(latest),
                "earliest_block_hash": hex_upper(earliest.block_id()) if earliest else "",
                "earliest_app_hash": hex_upper(earliest.header.app_hash) if earliest else "",
                "earliest_block_height": str(store.blocks.base if earliest else 0),
                "earliest_block_time": when(earliest),
                "catching_up": node.catching_up(),
                **self._sync_progress(),
            },
            "validator_info": validator,
        }

    async def m_consensus_state(self) -> JSON:
        """Where consensus is (CometBFT's ``round_state``, abridged): height, round and
        step, the proposer (its address and index in the set), the round's proposal, the
        locked and valid blocks, and who voted in each round (every round from 0 to the
        current one, as CometBFT lists them). While the node syncs there is no round
        state, and it says so."""
        driver = self.node.driver
        machine = driver.machine if driver is not None else None
        if machine is None:
            return {"round_state": None, "syncing": True}
        step = "new_height" if machine.round < 0 else machine.round_step.name.lower()
        proposal = machine.proposals.get(machine.round)

        def voted(sets: dict[int, VoteSet], round_: int) -> str:
            vote_set = sets.get(round_)
            if vote_set is None:
                return "_" * len(machine.voters)
            votes = [vote_set.vote_of(i) for i in range(len(machine.voters))]
            return "".join("_" if v is None else "x" if v.block_id else "n" for v in votes)

        # As CometBFT's height vote set: every round from 0 to the current one, with or
        # without votes, and any other round that has some.
        rounds = sorted({*range(max(machine.round, 0) + 1), *machine.prevotes, *machine.precommits})
        proposer = machine.proposer(max(machine.round, 0))
        index = machine.index_of(proposer)
        return {"round_state": {
            "height/round/step": f"{machine.height}/{machine.round}/{COMETBFT_STEPS[step]}",
            "height": str(machine.height), "round": machine.round, "step": step,
            "proposer": {"address": hex_upper(proposer), "index": -1 if index is None else index},
            "proposal_block_hash": hex_upper(proposal.block_id) if proposal else "",
            "locked_round": machine.locked_round,
            "locked_block_hash": hex_upper(machine.locked_value or b""),
            "valid_round": machine.valid_round,
            "valid_block_hash": hex_upper(machine.valid_value or b""),
            "height_vote_set": [{"round": r, "prevotes": voted(machine.prevotes, r),
                                 "precommits": voted(machine.precommits, r)} for r in rounds],
        }, "syncing": False}

    async def m_net_info(self) -> JSON:
        """The connected peers as CometBFT's net_info shows them. A peer's node_info has
        its node id, its addresses (from the status handshake) and this chain's id; its
        protocol version is this node's (it speaks the same protocols, or the handshake
        would have failed); what the handshake does not carry (moniker, version, channels,
        RPC address) is "". ``connection_status``: see :func:`shapes.connection_status`."""
        node = self.node
        now = time.time_ns()
        peers = []
        for peer in node.network.peers():
            link = node.network.link(peer)
            if link is None:  # gone since peers() was read
                continue
            peers.append({
                "node_info": {"protocol_version": dict(PROTOCOL_VERSION), "id": node.network.node_id(peer),
                              "listen_addr": self._listen_addr(peer), "network": node.chain_id, "version": "",
                              "channels": "", "moniker": "",
                              "other": {"tx_index": "", "rpc_address": "", "peer_id": peer}},
                "is_outbound": link.outbound,
                "connection_status": shapes.connection_status(now - link.since_ns),
                "remote_ip": link.remote_ip})
        return {"listening": True, "listeners": node.network.listen_addrs(), "n_peers": str(len(peers)),
                "peers": peers}

    def _sync_progress(self) -> JSON:
        """BIZRA's additions to sync_info while the node syncs: target, rate, ETA."""
        progress = self.node.sync.progress
        if progress is None:
            return {}
        now = trio.current_time()
        eta = progress.eta(now)
        return {"sync_target_height": str(progress.target),
                "sync_blocks_per_second": f"{progress.rate(now):.1f}",
                "sync_eta_seconds": str(round(eta)) if eta is not None else ""}

    def _listen_addr(self, peer: str) -> str:
        status = self.node.status.peers.get(PeerId(peer))
        return ",".join(status.addresses) if status else ""

    async def m_genesis(self) -> JSON:
        """CometBFT's GenesisDoc; BIZRA's genesis file, whole, is its ``app_state``, and
        ``app_hash`` the state's root at genesis ("" once no block of it is kept)."""
        genesis, store = self.node.genesis, self._store
        names = {v.pub_key: v.moniker for v in genesis.validators}
        first = store.blocks.block(genesis.initial_height)
        if first is not None:
            root = first.header.app_hash
        else:
            root = store.app_hash if store.height < genesis.initial_height else b""
        try:
            members = self.node.chain.members(genesis.initial_height)
        except InvalidBlock:
            members = []
        return {"genesis": {
            "genesis_time": format_rfc3339_ns(genesis.genesis_time_ns),
            "chain_id": genesis.chain_id,
            "initial_height": str(genesis.initial_height),
            "consensus_params": shapes.consensus_params(genesis.params),
            "validators": [{"address": hex_upper(address_of(m.pubkey)), "pub_key": shapes.pub_key(m.pubkey),
                            "power": str(m.power), "name": names.get(m.pubkey, "")} for m in members],
            "app_hash": hex_upper(root),
            "app_state": genesis.to_json(),
        }}

    async def m_genesis_chunked(self, chunk: Any = None) -> JSON:
        """``genesis``'s document in chunks of ``GENESIS_CHUNK_BYTES``, as CometBFT's:
        chunk ``chunk`` (from 0) of ``total``, its bytes in base64."""
        document = jsontext.dumps((await self.m_genesis())["genesis"])
        total = max(1, -(-len(document) // GENESIS_CHUNK_BYTES))
        number = _int("chunk", chunk) if chunk is not None else 0
        if number >= total:
            raise invalid(f"there are {total} chunks, {number} is invalid")
        part = document[number * GENESIS_CHUNK_BYTES:(number + 1) * GENESIS_CHUNK_BYTES]
        return {"chunk": str(number), "total": str(total), "data": b64(part)}

    async def m_consensus_params(self, height: Any = None) -> JSON:
        """The consensus params at ``height`` (default: the latest); they are the
        genesis's at every height."""
        return {"block_height": str(self._height(height)),
                "consensus_params": shapes.consensus_params(self.node.genesis.params)}

    async def m_abci_info(self) -> JSON:
        store = self._store
        return {"response": {"data": "bizra", "version": "1", "app_version": "1",
                             "last_block_height": str(store.height),
                             "last_block_app_hash": b64(store.app_hash)}}

    # --- blocks ----------------------------------------------------------------------

    async def m_block(self, height: Any = None) -> JSON:
        h = self._height(height)
        return self._final("block", h, lambda: self._rendered_block(self._block(h)))

    def _rendered_block(self, block: Block) -> JSON:
        return {"block_id": shapes.block_id(block.block_id()),
                "block": shapes.block(block, self.node.chain.members)}

    def _held_by_id(self, value: Any) -> Block | None:
        """The block of hash ``value`` if this node holds it: none below the lowest height
        held (the anchor block of a restore is kept, not served)."""
        blocks = self._store.blocks
        block = blocks.block_by_id(_hash("hash", value))
        return block if block is not None and block.header.height >= blocks.base else None

    async def m_block_by_hash(self, hash: Any) -> JSON:
        block = self._held_by_id(hash)
        if block is None:
            return {"block_id": shapes.block_id(b""), "block": None}
        return self._final("block", block.header.height, lambda: self._rendered_block(block))

    async def m_header(self, height: Any = None) -> JSON:
        return {"header": shapes.header(self._block(self._height(height)).header)}

    async def m_header_by_hash(self, hash: Any) -> JSON:
        block = self._held_by_id(hash)
        return {"header": shapes.header(block.header) if block is not None else None}

    async def m_block_search(self, query: Any, page: Any = None, per_page: Any = None,
                             order_by: Any = None) -> JSON:
        """Blocks whose height meets every condition of ``query``: ``block.height`` with
        =, <, <=, > or >=, joined by AND (BIZRA emits no block events to search by);
        newest first unless ``order_by`` is ``asc``, as CometBFT's."""
        if not isinstance(query, str) or not query.strip():
            raise invalid("query: expected conditions such as block.height > 5 AND block.height <= 10")
        store = self._store
        low, high = store.blocks.base, store.height
        for part in re.split(r"\s+AND\s+", query.strip()):
            match = _HEIGHT_CONDITION.match(part)
            if match is None:
                raise invalid(f"query: cannot search by {part.strip()!r} (block.height with =, <, <=, > "
                              "or >=, joined by AND)")
            op, value = match.group(1), int(match.group(2))
            if op in ("=", ">="):
                low = max(low, value)
            if op in ("=", "<="):
                high = min(high, value)
            if op == ">":
                low = max(low, value + 1)
            if op == "<":
                high = min(high, value - 1)
        if order_by not in (None, "", "asc", "desc"):
            raise invalid(f"order_by: expected asc or desc, got {order_by!r}")
        size = min(100, _int("per_page", per_page)) if per_page is not None else 30
        number = _int("page", page) if page is not None else 1
        total = max(0, high - low + 1)
        if size < 1 or number < 1 or (number - 1) * size >= max(1, total):
            raise invalid(f"page {number} of {size} is out of range ({total} blocks)")
        first = (number - 1) * size
        heights = (range(low + first, min(high, low + first + size - 1) + 1) if order_by == "asc"
                   else range(high - first, max(low, high - first - size + 1) - 1, -1))
        return {"blocks": [await self.m_block(h) for h in heights], "total_count": str(total)}

    async def m_blockchain(self, minHeight: Any = None, maxHeight: Any = None) -> JSON:
        store = self._store
        top = self._height(maxHeight)
        bottom = max(store.blocks.base, _int("minHeight", minHeight) if minHeight is not None else 1,
                     top - MAX_BLOCKCHAIN_RANGE + 1)
        if bottom > top:
            raise invalid(f"minHeight {bottom} is greater than maxHeight {top}")
        metas = []
        for height in range(top, bottom - 1, -1):
            block = self._block(height)
            metas.append({"block_id": shapes.block_id(block.block_id()),
                          "block_size": str(self._block_size(height)),
                          "header": shapes.header(block.header), "num_txs": str(len(block.txs))})
        return {"last_height": str(store.height), "block_metas": metas}

    def _block_size(self, height: int) -> int:
        """The length of the stored encoding of the block at ``height`` (the store keeps
        each block's canonical encoding, so re-encoding it would give the same length)."""
        size = self._store.blocks.block_size(height)
        if size is None:
            raise invalid(f"height {height}: no block yet")
        return size

    async def m_commit(self, height: Any = None) -> JSON:
        h = self._height(height)
        return self._final("commit", h, lambda: self._rendered_commit(h))

    def _rendered_commit(self, h: int) -> JSON:
        block = self._block(h)
        commit = self._store.blocks.commit(h)
        if commit is None:
            raise invalid(f"height {h}: no commit stored")
        return {"signed_header": {"header": shapes.header(block.header),
                                  "commit": shapes.commit(commit, self._addresses(h))},
                "canonical": h < self._store.height}

    async def m_block_results(self, height: Any = None) -> JSON:
        """``app_hash`` is the state's root after the block (CometBFT's FinalizeBlock
        answer, in base64), which the next block's header carries."""
        h = self._height(height)
        return self._final("block_results", h, lambda: self._rendered_results(h))

    def _rendered_results(self, h: int) -> JSON:
        located = self._store.txs_at(h)
        self._block(h)  # raises for a height not stored
        after = self._store.app_hash  # read first: a block committed meanwhile is found below
        following = self._store.blocks.block(h + 1)
        if following is not None:
            after = following.header.app_hash
        return {"height": str(h), "txs_results": [shapes.tx_result(t.result) for t in located or []],
                "finalize_block_events": [], "validator_updates": self._validator_updates(h),
                "consensus_param_updates": None, "app_hash": b64(after)}

    def _validator_updates(self, h: int) -> list[JSON]:
        """What changes in the validator set at height ``h`` + 2 (sets change at epoch
        ends, taking effect two heights on, as CometBFT's validator updates do): each
        member that joins or whose power changes, with its power, and each that leaves,
        with 0. None but at an epoch end, or when a set is no longer known."""
        config = self.node.chain_config
        if not config.params.is_epoch_end(h, config.initial_height):
            return []
        chain = self.node.chain
        try:
            before, after = chain.members(h + 1), chain.members(h + 2)
        except InvalidBlock:
            return []
        powers = {m.pubkey: m.power for m in before}
        staying = {m.pubkey for m in after}
        return ([shapes.validator_update(m.pubkey, m.power) for m in after if powers.get(m.pubkey) != m.power]
                + [shapes.validator_update(m.pubkey, 0) for m in before if m.pubkey not in staying])

    async def m_validators(self, height: Any = None, page: Any = None, per_page: Any = None) -> JSON:
        h = self._height(height) if height is not None else self._store.height + 1
        members = self.node.chain.members(h)
        size = min(100, _int("per_page", per_page)) if per_page is not None else 30
        number = _int("page", page) if page is not None else 1
        if size < 1 or number < 1 or (number - 1) * size >= max(1, len(members)):
            raise invalid(f"page {number} of {size} is out of range ({len(members)} validators)")
        chosen = members[(number - 1) * size:number * size]
        return {"block_height": str(h), "validators": [shapes.validator(m) for m in chosen],
                "count": str(len(chosen)), "total": str(len(members))}

    # --- txs -------------------------------------------------------------------------

    async def m_tx(self, hash: Any, prove: Any = None) -> JSON:
        """The tx of hash ``hash``; with ``prove``, its merkle proof against its block's
        data hash (else no ``proof``: CometBFT leaves out the empty one, its field being
        omitempty)."""
        return self._tx_json(_hash("hash", hash), prove in (True, "true"))

    def _tx_json(self, h: bytes, prove: bool) -> JSON:
        found = self._store.txs.get(h)
        if found is None:
            base = self._store.blocks.base
            older = (f" (this node holds the txs of heights {base} and above only; lowest height is {base})"
                     if base > self.node.genesis.initial_height else "")
            raise invalid(f"tx ({hex_upper(h)}) not found{older}")
        block = self._block(found.height)
        answer: JSON = {"hash": hex_upper(h), "height": str(found.height), "index": found.index,
                        "tx_result": shapes.tx_result(found.result), "tx": b64(block.txs[found.index])}
        if prove:
            answer["proof"] = shapes.tx_proof(block, found.index)
        return answer

    async def m_tx_search(self, query: Any, prove: Any = None, page: Any = None, per_page: Any = None,
                          order_by: Any = None) -> JSON:
        """Txs matching one condition: ``tx.hash='HEX'``, ``tx.height=N`` or
        ``message.sender='ADDRESS'`` (the index this node keeps)."""
        if not isinstance(query, str):
            raise invalid("query: expected text such as tx.height=5")
        key, _, value = query.partition("=")
        key, value = key.strip(), value.strip().strip("'\"")
        size = min(100, _int("per_page", per_page)) if per_page is not None else 30
        number = _int("page", page) if page is not None else 1
        if size < 1 or number < 1:
            raise invalid("page and per_page start at 1")
        if key == "tx.hash":
            hashes = [_hash("tx.hash", value)] if self._store.txs.get(_hash("tx.hash", value)) else []
        elif key == "tx.height":
            at = _int("tx.height", value)
            if self.node.genesis.initial_height < self._store.blocks.base and at < self._store.blocks.base:
                raise invalid(f"tx.height {at} is not available, lowest height is {self._store.blocks.base}")
            located = (self._store.txs_at(at) if at <= self._store.height else None) or []
            hashes = [t.tx_hash for t in located]
        elif key == "message.sender":
            found = self._store.txs.by_sender(_address(value), limit=number * size + 1)
            hashes = [h for _, _, h in found]
        else:
            raise invalid(f"query: cannot search by {key!r} (tx.hash, tx.height or message.sender)")
        if order_by == "desc":
            hashes.reverse()
        chosen = hashes[(number - 1) * size:number * size]
        proved = prove in (True, "true")
        return {"txs": [self._tx_json(h, proved) for h in chosen], "total_count": str(len(hashes))}

    async def m_abci_query(self, path: Any = None, data: Any = None, height: Any = None,
                           prove: Any = None) -> JSON:
        """``path`` ``/store``: ``data`` (hex) is a state key; its value, and with
        ``prove`` its state proof, at ``height``."""
        if path != "/store":
            raise invalid(f"path: {path!r} is not served (the path is /store, data a hex state key)")
        proof = await self.m_bizra_proof(data, height)
        value = proof["value"]
        return {"response": {"code": 0 if value is not None else 1, "log": "" if value else "does not exist",
                             "info": "", "index": "0", "key": b64(bytes.fromhex(proof["key"])),
                             "value": value, "proofOps": {"ops": [{"type": "bizra/state", "key": "",
                                                                    "data": proof["proof"]}]}
                             if prove in (True, "true") else None,
                             "height": proof["height"], "codespace": ""}}

    async def m_check_tx(self, tx: Any) -> JSON:
        raw = _tx(tx)
        try:
            self.node.mempool.check(raw)
        except InvalidTx as exc:
            return _check_result(CODE_INVALID_TX, str(exc))
        except MempoolFull as exc:
            return _check_result(CODE_MEMPOOL_FULL, str(exc))
        return _check_result(0, "")

    async def m_broadcast_tx_async(self, tx: Any) -> JSON:
        raw = _tx(tx)
        code, log = 0, ""
        try:
            self.node.start_soon(functools.partial(self._submit_quietly, raw))
        except MempoolFull as exc:
            code, log = CODE_MEMPOOL_FULL, str(exc)
        return {"code": code, "data": "", "log": log, "codespace": "mempool" if code else "",
                "hash": hex_upper(tx_hash(raw))}

    async def m_bizra_broadcast_txs(self, txs: Any) -> JSON:
        """Many txs in one call, admitted together (their signatures checked as one batch
        off the event loop): for each, in order, what ``broadcast_tx_sync`` answers."""
        if not isinstance(txs, list) or not txs:
            raise invalid("txs: expected a non-empty array of base64 txs")
        if len(txs) > MAX_BULK_TXS:
            raise invalid(f"txs: {len(txs)} txs, more than {MAX_BULK_TXS} in one call")
        raws = [_tx(tx) for tx in txs]
        results = await self.node.submit_txs(raws)
        answers = []
        for raw, result in zip(raws, results, strict=True):
            if isinstance(result, bytes):
                answers.append({"code": 0, "log": "", "hash": hex_upper(result)})
            else:
                code = CODE_INVALID_TX if isinstance(result, InvalidTx) else CODE_MEMPOOL_FULL
                answers.append({"code": code, "log": str(result), "hash": hex_upper(tx_hash(raw))})
        return {"txs": answers}

    async def _submit_quietly(self, raw: bytes) -> None:
        with contextlib.suppress(BizraError):  # async: the client asked not to hear
            await self.node.submit_tx(raw)

    async def m_broadcast_tx_sync(self, tx: Any) -> JSON:
        raw = _tx(tx)
        code, log = await self._submit(raw)
        return {"code": code, "data": "", "log": log, "codespace": "mempool" if code else "",
                "hash": hex_upper(tx_hash(raw))}

    async def _submit(self, raw: bytes) -> tuple[int, str]:
        try:
            await self.node.submit_tx(raw)
        except InvalidTx as exc:
            return CODE_INVALID_TX, str(exc)
        except MempoolFull as exc:
            return CODE_MEMPOOL_FULL, str(exc)
        return 0, ""

    async def m_broadcast_tx_commit(self, tx: Any) -> JSON:
        raw = _tx(tx)
        h = tx_hash(raw)
        committed = self.node.watch_tx(h)
        try:
            code, log = await self._submit(raw)
            check = _check_result(code, log)
            if code:
                return {"check_tx": check, "tx_result": shapes.tx_result(TxResult(0)), "hash": hex_upper(h),
                        "height": "0"}
            with trio.move_on_after(self.node.config.rpc.timeout_broadcast_tx_commit_s):
                await committed.wait()
        finally:
            self.node.unwatch_tx(h)
        found = self._store.txs.get(h)
        if found is None:
            raise RpcError(INTERNAL_ERROR, "Internal error",
                           f"timed out waiting for tx to be included in a block (hash {hex_upper(h)})")
        return {"check_tx": check, "tx_result": shapes.tx_result(found.result), "hash": hex_upper(h),
                "height": str(found.height)}

    async def m_unconfirmed_txs(self, limit: Any = None) -> JSON:
        mempool = self.node.mempool
        txs = mempool.pending(min(100, _int("limit", limit)) if limit is not None else 30)
        return {"n_txs": str(len(txs)), "total": str(len(mempool)), "total_bytes": str(mempool.bytes),
                "txs": [b64(t) for t in txs]}

    async def m_num_unconfirmed_txs(self) -> JSON:
        mempool = self.node.mempool
        return {"n_txs": str(len(mempool)), "total": str(len(mempool)), "total_bytes": str(mempool.bytes),
                "txs": None}

    # --- BIZRA -----------------------------------------------------------------------

    async def m_bizra_account(self, address: Any) -> JSON:
        who = _address(address)
        account = Ledger(self._store.state).account(who)
        return {"address": format_address(who), "balance": str(account.balance), "nonce": str(account.nonce),
                "height": str(self._store.height)}


    async def m_bizra_validator(self, operator: Any) -> JSON:
        who = _address(operator)
        validator = Ledger(self._store.state).validator(who)
        if validator is None:
            raise invalid(f"no validator is operated by {format_address(who)}")
        return self._validator(validator)

    async def m_bizra_validators(self) -> JSON:
        validators = Ledger(self._store.state).validators()
        return {"height": str(self._store.height), "validators": [self._validator(v) for v in validators]}

    def _validator(self, v: Validator) -> JSON:
        power = next((m.power for m in self.node.chain.members(self._store.height + 1)
                      if m.pubkey == v.consensus_pubkey), 0)
        ledger = Ledger(self._store.state)
        address = address_of(v.consensus_pubkey)
        return {"operator": format_address(v.operator), "address": hex_upper(address),
                "pub_key": shapes.pub_key(v.consensus_pubkey), "moniker": v.moniker, "bond": str(v.bond),
                "reputation": str(v.reputation), "jailed_until_epoch": str(v.jailed_until_epoch),
                "jailed": v.jailed_until_epoch != 0, "voting_power": str(power),
                "impact": str(ledger.impact(v.operator)), "epoch_score": str(ledger.epoch_score(v.operator)),
                "last_signed_height": str(self._last_signed().get(address, 0))}

    def _last_signed(self) -> dict[bytes, int]:
        """Each consensus address's latest height, among the last ``SIGNED_LOOKBACK``,
        whose commit carries its signature (for a block or nil); worked out once a height."""
        store = self._store
        height = store.height
        if self._signed[0] == height:
            return self._signed[1]
        found: dict[bytes, int] = {}
        wanted = {address_of(m.pubkey) for m in self.node.chain.members(height + 1)} if height else set()
        for h in range(height, max(store.blocks.base, height - SIGNED_LOOKBACK + 1) - 1, -1):
            commit = store.blocks.commit(h)
            if commit is None:
                continue
            for sig, address in zip(commit.signatures, self._addresses(h), strict=False):
                if sig.flag != CommitFlag.ABSENT:
                    found.setdefault(address, h)
            if wanted <= set(found):
                break
        self._signed = (height, found)
        return found

    async def m_bizra_attestation(self, id: Any) -> JSON:
        attestation_id = _hash("id", id)
        att = Ledger(self._store.state).attestation(attestation_id)
        if att is None:
            raise invalid(f"no attestation {hex_upper(attestation_id)}")
        return {"id": hex_upper(attestation_id), "contributor": format_address(att.contributor),
                "epoch": str(att.epoch), "score": str(att.score),
                "status": ATTESTATION_STATUS.get(att.status, str(att.status)),
                "endorsing_power": str(att.endorsing_power), "weighted_scores": str(att.weighted_scores)}

    async def m_bizra_epoch(self) -> JSON:
        config = self.node.chain_config
        params = config.params
        next_height = self._store.height + 1
        epoch = params.epoch_of(next_height, config.initial_height)
        length = params.epoch_length
        end = config.initial_height + (epoch + 1) * length - 1
        issued, slashed = Ledger(self._store.state).supply()
        return {"epoch": str(epoch), "epoch_length": str(length), "last_height_of_epoch": str(end),
                "height": str(self._store.height), "issued": str(issued), "slashed": str(slashed)}

    async def m_bizra_poi_score(self, address: Any) -> JSON:
        who = _address(address)
        ledger = Ledger(self._store.state)
        return {"address": format_address(who), "impact": str(ledger.impact(who)),
                "epoch_score": str(ledger.epoch_score(who)), "height": str(self._store.height)}

    async def m_bizra_proof(self, key: Any, height: Any = None) -> JSON:
        """A state key's value and its proof against the app hash of ``height``."""
        if not isinstance(key, str):
            raise invalid("key: expected hex")
        try:
            raw_key = bytes.fromhex(key[2:] if key[:2] in ("0x", "0X") else key)
        except ValueError:
            raise invalid("key: expected hex") from None
        h = self._height(height)
        value, proof, root = self._store.state.prove(raw_key, h)
        return {"key": hex_upper(raw_key), "value": b64(value) if value is not None else None,
                "proof": b64(dumps(proof.to_list())), "root": hex_upper(root), "height": str(h)}

    # --- admin (bearer token: see node.rpc.server) -----------------------------------

    async def m_dial_peers(self, peers: Any, persistent: Any = None) -> JSON:
        """Dial each of ``peers`` (multiaddrs ending in /p2p/<peer id>) now."""
        self._dial_all("peers", peers)
        return {"log": "Dialing peers in progress. See /net_info for details"}

    async def m_dial_seeds(self, seeds: Any) -> JSON:
        """Dial each of ``seeds`` now, as ``dial_peers`` does (BIZRA has no seed mode:
        a seed is a peer like any other, found by its address)."""
        self._dial_all("seeds", seeds)
        return {"log": "Dialing seeds in progress. See /net_info for details"}

    def _dial_all(self, name: str, addresses: Any) -> None:
        if not isinstance(addresses, list) or not all(isinstance(p, str) for p in addresses):
            raise invalid(f"{name}: expected a list of addresses")
        for address in addresses:
            try:
                peer_of(address)
            except BizraError as exc:
                raise invalid(f"{name}: {exc}") from None
        for address in addresses:
            try:
                self.node.start_soon(functools.partial(self._dial, address))
            except MempoolFull as exc:
                raise RpcError(INTERNAL_ERROR, "Internal error", str(exc)) from None

    async def _dial(self, address: str) -> None:
        with contextlib.suppress(BizraError):
            await self.node.network.connect(address)

    async def m_bizra_block_peers(self, peers: Any) -> JSON:
        """Stop hearing ``peers`` (peer ids), replacing the last list; ``[]`` lifts it
        (see :meth:`p2p.network.Network.block`)."""
        if not isinstance(peers, list) or not all(isinstance(p, str) and p for p in peers):
            raise invalid("peers: expected a list of peer ids")
        self.node.network.block([PeerId(p) for p in peers])
        return {"blocked": sorted(peers)}

    async def m_bizra_ban_peer(self, peer: Any, reason: Any = None) -> JSON:
        """Disconnect ``peer`` and refuse it for the ban period."""
        if not isinstance(peer, str) or not peer:
            raise invalid("peer: expected a peer id")
        self.node.network.ban(PeerId(peer), str(reason or "banned by the operator"))
        return {}

def _check_result(code: int, log: str) -> JSON:
    return {"code": code, "data": "", "log": log, "info": "", "gas_wanted": "0", "gas_used": "0",
            "events": [], "codespace": "mempool" if code else ""}
