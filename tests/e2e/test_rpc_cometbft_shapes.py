"""Each JSON-RPC method the node serves under CometBFT's name answers in CometBFT v0.38's
documented shape: a devnet (one validator, one node that follows it) makes blocks with
txs in them, and each method's result is compared key by key and type by type with the
documented one in ``tests/fixtures/cometbft/<method>.json`` (``tests/support/shapekit.py``
says how).

:data:`RULES` lists, by method and path, where an answer may differ and why, of three
kinds:

- ``v0.38``: the document (``rpc/openapi/openapi.yaml``) is older than v0.38 there, and
  v0.38's Go types (``rpc/core/types/responses.go`` and the types it names) give
  another key or type; the answer is compared with what they give;
- ``BIZRA``: the node differs on purpose, as ``docs/rpc.md`` says;
- ``devnet``: a devnet has nothing to show there (no evidence, no validator change).

Not compared: CometBFT's methods the node does not serve (``dump_consensus_state``, whose
round state ``consensus_state`` gives abridged, and ``broadcast_evidence``: evidence
travels by gossip only), and ``subscribe``, ``unsubscribe`` and ``unsubscribe_all``
(WebSocket only; ``test_rpc.py`` tests them). The admin methods ``dial_peers`` and
``dial_seeds`` are compared too.

Also: ``net_info`` says which side of a connection dialed, and from which IP.

Keys the node sends that the document lacks are not differences; :data:`EXTRAS` lists
them, and the test checks that list:

- v0.38's, which the document does not show: ``block_results.app_hash``; ``info`` and
  ``codespace`` of ``abci_query``'s response; the ResponseCheckTx fields ``info``,
  ``gas_wanted``, ``gas_used``, ``events`` and ``codespace`` in ``broadcast_tx_commit``'s
  ``check_tx``; ``num_unconfirmed_txs``'s ``txs`` (null);
- BIZRA's: ``node_info.other.genesis_hash`` and ``node_info.other.peer_id`` (in
  ``status``, and ``peer_id`` in each ``net_info`` peer); ``consensus_state``'s
  ``syncing`` and ``round_state``'s ``height``, ``round``, ``step``, ``locked_round`` and
  ``valid_round``; and, as ``genesis.app_state`` (an object the document leaves open),
  BIZRA's genesis file.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chain import statekeys
from chain.crypto import PrivateKey, address_of, private_key_from_pem
from chain.params import Params
from chain.types import Transfer
from node import devnet

from chainkit import sign_tx
from nodekit import free_ports, height, processes, rpc, wait_until
from shapekit import FIXTURES, Outcome, Rule, compare, fixture, paths

pytestmark = pytest.mark.slow

CHAIN_ID = "bizra-shapes-1"
BLOCK_MS = 500

V038_PARAMS = {"block": {"max_bytes": "22020096", "max_gas": "1000"},
               "evidence": {"max_age_num_blocks": "100000", "max_age_duration": "172800000000000",
                            "max_bytes": "1048576"},
               "validator": {"pub_key_types": ["ed25519"]},
               "version": {"app": "0"},
               "abci": {"vote_extensions_enable_height": "0"}}
"""v0.38's ConsensusParams with the document's values where v0.38 kept the field, and
``DefaultConsensusParams``' for the fields it added."""
PARAMS_WHY = ("v0.38: types.ConsensusParams is block {max_bytes, max_gas}, evidence {max_age_num_blocks, "
              "max_age_duration, max_bytes}, validator, version, abci; time_iota_ms and evidence.max_age are "
              "gone")
EVENT = {"type": "app", "attributes": [{"key": "action", "value": "send", "index": False}]}
EXEC_TX_RESULT = {"code": 0, "data": "", "log": '[{"msg_index":"0","success":true,"log":""}]', "info": "",
                  "gas_wanted": "200000", "gas_used": "28596", "events": [EVENT], "codespace": ""}
"""v0.38's ExecTxResult with the document's values (its tags as one event)."""
TX_RESULT_WHY = ("v0.38: a tx result is abci.ExecTxResult, written by jsonpb with every field: code "
                 "(uint32, a number), data, log, info, gas_wanted, gas_used, events (tags became events in "
                 "v0.34), codespace")
NO_EVENTS = "BIZRA: its txs and blocks emit no ABCI events (tx_search reads its own index, docs/rpc.md)"
CODE_IS_NUMBER = "v0.38: code is a uint32, a JSON number (the document writes it as a string)"
COMMIT_SIG = {"block_id_flag": 2, "validator_address": "000001E443FD237E4B616E2FA69DF4EE3D49A94F",
              "timestamp": "2019-08-01T11:39:38.867269833Z",
              "signature": fixture("block")["block"]["last_commit"]["signatures"][0]["signature"]}
"""A CommitSig with the values of the vote the document shows in a block's last commit."""

BLOCK_RULES = {
    "block.data": Rule("v0.38: types.Data is an object, the txs under txs",
                       expect={"txs": fixture("block")["block"]["data"]}),
    "block.evidence": Rule("v0.38: types.EvidenceData is an object, the evidence list under evidence",
                           expect={"evidence": []}),
    "block.last_commit.height": Rule("v0.38: Commit.Height is an int64, a decimal string", expect="0"),
    "block.last_commit.signatures[]": Rule(
        "v0.38: a commit holds CommitSigs (as commit's signed_header.commit.signatures in the same "
        "document), not votes", expect=COMMIT_SIG),
}
TX_SEARCH_PROOF = "v0.38: types.TxProof's keys are root_hash, data and proof"
ABRIDGED = "BIZRA: consensus_state is abridged (docs/rpc.md)"
GENESIS_CHUNK_WHY = ("v0.38: ResultGenesisChunk's ChunkNumber and TotalChunks are Go ints, which cmtjson "
                     "writes as decimal strings")

RULES: dict[str, dict[str, Rule]] = {
    "broadcast_tx_sync": {"code": Rule(CODE_IS_NUMBER, expect=0),
                          "data": Rule("v0.38: ResultBroadcastTx.Data is HexBytes", format="HEX")},
    "broadcast_tx_async": {"code": Rule(CODE_IS_NUMBER, expect=0),
                           "data": Rule("v0.38: ResultBroadcastTx.Data is HexBytes", format="HEX")},
    "check_tx": {"code": Rule(CODE_IS_NUMBER, expect=0),
                 "events": Rule(NO_EVENTS, empty=True)},
    "broadcast_tx_commit": {
        "deliver_tx": Rule("v0.38: ResultBroadcastTxCommit's deliver_tx became tx_result (an ExecTxResult)",
                           rename="tx_result", expect=EXEC_TX_RESULT),
        "tx_result.events": Rule(NO_EVENTS, empty=True),
        "check_tx.code": Rule(CODE_IS_NUMBER, expect=0)},
    "block": BLOCK_RULES,
    "block_by_hash": BLOCK_RULES,
    "blockchain": {"block_metas[].block_size": Rule("v0.38: BlockMeta.BlockSize is a Go int, which cmtjson "
                                                    "writes as a decimal string", expect="1000000")},
    "block_results": {
        "txs_results[]": Rule(TX_RESULT_WHY, expect=EXEC_TX_RESULT),
        "txs_results[].events": Rule(NO_EVENTS, empty=True),
        "finalize_block_events": Rule(NO_EVENTS, empty=True),
        "validator_updates": Rule("devnet: a set changes at an epoch's last height only", empty=True),
        "validator_updates[].pub_key": Rule(
            "v0.38: abci.ValidatorUpdate's key is a crypto.PublicKey, a oneof cmtjson writes as {Sum: "
            "{type, value}}", expect={"Sum": {"type": "tendermint.crypto.PublicKey_Ed25519", "value": {
                "ed25519": fixture("block_results")["validator_updates"][0]["pub_key"]["value"]}}}),
        "consensus_param_updates": Rule("BIZRA: the consensus params are the genesis's at every height "
                                        "(docs/rpc.md), so no block updates them", also=("null",)),
    },
    "genesis": {"genesis.consensus_params": Rule(PARAMS_WHY, expect=V038_PARAMS)},
    "consensus_params": {"consensus_params": Rule(PARAMS_WHY, expect=V038_PARAMS)},
    "tx": {"tx_result": Rule(TX_RESULT_WHY, expect=EXEC_TX_RESULT),
           "tx_result.events": Rule(NO_EVENTS, empty=True)},
    "tx_search": {
        "txs[].tx_result": Rule(TX_RESULT_WHY, expect=EXEC_TX_RESULT),
        "txs[].tx_result.events": Rule(NO_EVENTS, empty=True),
        "txs[].proof.RootHash": Rule(TX_SEARCH_PROOF, rename="root_hash"),
        "txs[].proof.Data": Rule(TX_SEARCH_PROOF, rename="data"),
        "txs[].proof.Proof": Rule(TX_SEARCH_PROOF, rename="proof"),
        "txs[].proof.proof.aunts": Rule("v0.38: merkle.Proof's aunts are omitempty, and a block of one tx "
                                        "has none", absent=True),
    },
    "abci_query": {
        "response.proof": Rule("v0.38: abci.ResponseQuery (jsonpb) has proofOps, a ProofOps {ops: [{type, "
                               "key, data}]}, where the document has a proof string (it has no example of "
                               "one: zero values)", rename="proofOps",
                               expect={"ops": [{"type": "", "key": "", "data": ""}]}),
        "response.code": Rule(CODE_IS_NUMBER, expect=0),
    },
    "consensus_state": {
        "round_state.start_time": Rule(ABRIDGED + "; no round start time", absent=True),
        "round_state.height_vote_set[].prevotes": Rule(
            "BIZRA: a round's votes are one character per validator (docs/rpc.md)", also=("string",)),
        "round_state.height_vote_set[].precommits": Rule(
            "BIZRA: a round's votes are one character per validator (docs/rpc.md)", also=("string",)),
        "round_state.height_vote_set[].prevotes_bit_array": Rule(
            ABRIDGED + "; the votes' string is the bit array", absent=True),
        "round_state.height_vote_set[].precommits_bit_array": Rule(
            ABRIDGED + "; the votes' string is the bit array", absent=True),
    },
    "net_info": {
        "peers[].connection_status.Channels": Rule(
            "BIZRA: connections are libp2p's, with no CometBFT MConnection channels (docs/rpc.md)",
            empty=True),
    },
    "unconfirmed_txs": {"txs": Rule("devnet: the tx sent just before may be in a block already", empty=True)},
    "dial_peers": {"Log": Rule("v0.38: ResultDialPeers.Log is written as log", rename="log")},
    "dial_seeds": {"Log": Rule("v0.38: ResultDialSeeds.Log is written as log", rename="log")},
    "block_search": {**{f"blocks[].{path}": rule for path, rule in BLOCK_RULES.items()},
                     "total_count": Rule("v0.38: ResultBlockSearch.TotalCount is a Go int, which cmtjson "
                                         "writes as a decimal string", expect="2")},
    "genesis_chunked": {
        "chunk": Rule(GENESIS_CHUNK_WHY, expect="0", format="int"),
        "total": Rule(GENESIS_CHUNK_WHY, expect="1", format="int"),
    },
}

EXTRAS: dict[str, list[str]] = {
    "block_results": ["app_hash"],
    "abci_query": ["response.info", "response.codespace"],
    "broadcast_tx_commit": ["check_tx.info", "check_tx.gas_wanted", "check_tx.gas_used", "check_tx.events",
                            "check_tx.codespace"],
    "num_unconfirmed_txs": ["txs"],
    "status": ["node_info.other.genesis_hash", "node_info.other.peer_id"],
    "net_info": ["peers[].node_info.other.peer_id"],
    "consensus_state": [f"round_state.{key}" for key in ("height", "round", "step", "locked_round",
                                                         "valid_round")] + ["syncing"],
    "genesis": [f"genesis.app_state.{key}" for key in ("chain_id", "genesis_time", "initial_height", "params",
                                                       "validators", "accounts")],
}
"""The keys each method's answer has that the document lacks (see the module docstring)."""
FOUND: dict[str, Outcome] = {}
"""What the comparison of each method's answer found, as the test runs."""


@dataclass
class Devnet:
    directory: Path
    ports: list[int]
    """RPC: the validator's, then the follower's."""
    faucet: PrivateKey
    operator: PrivateKey
    token: str
    """The follower's admin token."""
    p2p_address: str
    """Where the validator listens for peers."""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    directory = tmp_path_factory.mktemp("shapes")
    p2p, rpc_base = free_ports(2), free_ports(2) + 20
    nodes = devnet.create(directory, 1, chain_id=CHAIN_ID, p2p_port=p2p, rpc_port=rpc_base, full_nodes=1,
                          params=Params(block_time_ms=BLOCK_MS, epoch_length=1_000))
    ports = [n.rpc_port for n in nodes]
    logs = [n.home.path / "node.log" for n in nodes]
    with processes() as started:
        started.extend(devnet.start(n, log) for n, log in zip(nodes, logs, strict=True))
        wait_until(lambda: min(height(p) for p in ports) >= 1, 60, "both nodes at height 1", logs)
        wait_until(lambda: all(rpc(p, "net_info")["peers"] for p in ports), 30, "the nodes are peers", logs)
        yield Devnet(directory, ports, private_key_from_pem((directory / "faucet.key").read_bytes()),
                     private_key_from_pem((nodes[0].home.path / "operator_key.pem").read_bytes()),
                     nodes[1].home.rpc_token(),
                     f"/ip4/127.0.0.1/tcp/{nodes[0].p2p_port}/p2p/{nodes[0].peer_id}")


def check(method: str, result: Any) -> None:
    """Compare ``result`` (of ``method``) with the documented one, into :data:`FOUND`
    (a method asked twice keeps both answers' findings)."""
    outcome = compare(fixture(method), result, RULES.get(method, {}))
    seen = FOUND.setdefault(method, Outcome([], []))
    seen.problems += [p for p in outcome.problems if p not in seen.problems]
    seen.extras += [e for e in outcome.extras if e not in seen.extras]


def test_every_rule_names_a_path_of_its_methods_document() -> None:
    """No rule is stale or misspelt: each names a path the comparison walks."""
    for method, rules in RULES.items():
        walked = set(paths(fixture(method), rules))
        assert set(rules) <= walked, (method, sorted(set(rules) - walked))
    assert set(RULES) <= {p.stem for p in FIXTURES.glob("*.json")}


def test_each_method_answers_in_cometbfts_documented_shape(net: Devnet) -> None:
    validator, follower = net.ports
    faucet = address_of(net.faucet.public_key)
    to = address_of(PrivateKey.generate().public_key)

    def b64(tx: bytes) -> str:
        return base64.b64encode(tx).decode()

    first, second = (sign_tx(CHAIN_ID, net.faucet, n, Transfer(to, 1_000 + n)) for n in (0, 1))
    check("check_tx", rpc(validator, "check_tx", tx=b64(first)))
    check("broadcast_tx_sync", rpc(validator, "broadcast_tx_sync", tx=b64(first)))
    check("unconfirmed_txs", rpc(validator, "unconfirmed_txs"))
    check("num_unconfirmed_txs", rpc(validator, "num_unconfirmed_txs"))
    check("broadcast_tx_async", rpc(validator, "broadcast_tx_async",
                                    tx=b64(sign_tx(CHAIN_ID, net.operator, 0, Transfer(to, 7)))))
    committed = rpc(validator, "broadcast_tx_commit", tx=b64(second))
    check("broadcast_tx_commit", committed)
    assert committed["tx_result"]["code"] == 0, committed
    at = committed["height"]
    wait_until(lambda: height(validator) > int(at), 10, "a block after the tx's")

    check("health", rpc(validator, "health"))
    check("status", rpc(validator, "status"))
    for port in net.ports:  # the follower dialed the validator: one outbound peer, one inbound
        check("net_info", rpc(port, "net_info"))
    check("blockchain", rpc(validator, "blockchain", minHeight="1", maxHeight=at))
    check("genesis", rpc(validator, "genesis"))
    block = rpc(validator, "block", height=at)
    assert block["block"]["data"]["txs"], "the tx's block holds it"
    check("block", block)
    check("block_by_hash", rpc(validator, "block_by_hash", hash=block["block_id"]["hash"]))
    check("header", rpc(validator, "header", height=at))
    check("header_by_hash", rpc(validator, "header_by_hash", hash=block["block_id"]["hash"]))
    found = rpc(validator, "block_search", query=f"block.height >= {at} AND block.height <= {at}")
    assert [b["block"]["header"]["height"] for b in found["blocks"]] == [str(at)], found
    check("block_search", found)
    chunk = rpc(validator, "genesis_chunked", chunk="0")
    assert json.loads(base64.b64decode(chunk["data"])) == rpc(validator, "genesis")["genesis"]
    check("genesis_chunked", chunk)
    check("block_results", rpc(validator, "block_results", height=at))
    check("commit", rpc(validator, "commit", height=at))
    check("validators", rpc(validator, "validators"))
    check("consensus_params", rpc(validator, "consensus_params"))
    check("tx", rpc(validator, "tx", hash=committed["hash"]))
    check("tx_search", rpc(validator, "tx_search", query=f"tx.height={at}", prove=True))
    check("abci_info", rpc(validator, "abci_info"))
    check("abci_query", rpc(validator, "abci_query", path="/store", data=statekeys.account(faucet).hex(),
                            prove=True))
    check("dial_peers", rpc(follower, "dial_peers", token=net.token, peers=[net.p2p_address]))
    check("dial_seeds", rpc(follower, "dial_seeds", token=net.token, seeds=[net.p2p_address]))

    check("consensus_state", rpc(validator, "consensus_state"))

    assert set(FOUND) == {p.stem for p in FIXTURES.glob("*.json")}, "a method with a fixture was not asked"
    differences = {m: o.problems for m, o in FOUND.items() if o.problems}
    extras = {m: o.extras for m, o in FOUND.items() if o.extras}
    assert not differences, f"differences: {differences}; extras: {extras}"
    assert {m: sorted(e) for m, e in extras.items()} == {m: sorted(e) for m, e in EXTRAS.items()}


def test_net_info_says_which_side_dialed_and_from_where(net: Devnet) -> None:
    """The follower dialed the validator (its bootnode): outbound on the follower's side,
    inbound on the validator's, both from 127.0.0.1, open for some time already."""
    inbound, outbound = (rpc(port, "net_info")["peers"] for port in net.ports)
    assert [p["is_outbound"] for p in inbound] == [False] and [p["is_outbound"] for p in outbound] == [True]
    for peer in inbound + outbound:
        assert peer["remote_ip"] == "127.0.0.1", peer
        assert int(peer["connection_status"]["Duration"]) > 0, peer
