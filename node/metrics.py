"""Prometheus metrics, named as CometBFT names its own (``<namespace>_<subsystem>_<name>``,
namespace ``bizra``), read from the node when scraped, plus the RPC's latency."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node.view import NodeView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _NodeCollector(Collector):
    def __init__(self, node: NodeView) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        counters = node.counters

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"bizra_{name}", doc, value=value)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"bizra_{name}", doc, value=value)

        yield gauge("consensus_height", "The latest committed height.", node.store.height)
        rounds = node.driver.committed_rounds.get(node.store.height, 0) if node.driver else 0
        yield gauge("consensus_rounds", "The round the latest height was decided in.", rounds)
        intervals = counters.block_intervals
        yield gauge("consensus_block_interval_seconds", "Seconds between the last two blocks committed here.",
                    intervals[-1] if intervals else 0)
        yield gauge("consensus_validator", "1 if this node is a validator of the current set.",
                    1 if node.is_validator() else 0)
        yield counter("consensus_txs", "Txs committed since the node started.", counters.txs_committed)
        yield counter("consensus_blocks", "Blocks committed since the node started.",
                      counters.blocks_committed)
        yield gauge("mempool_size", "Txs in the mempool.", len(node.mempool))
        yield gauge("mempool_size_bytes", "Bytes of txs in the mempool.", node.mempool.bytes)
        yield counter("mempool_received_txs", "Txs received from peers.", counters.txs_received)
        yield counter("mempool_failed_txs", "Txs refused by the mempool.", counters.txs_refused)
        yield counter("mempool_shed_txs", "Clients' txs refused while the node was busy.", counters.txs_shed)
        yield counter("mempool_gossip_batches_refused",
                      "Peers' tx batches only kept for rebuilding blocks: the mempool was full.",
                      node.txs.batches_refused)
        yield counter("mempool_gossip_batches_duplicate",
                      "Peers' tx batches received again (each told its sender to stop relaying them).",
                      node.txs.duplicates)
        yield counter("mempool_gossip_sends_dropped", "Tx batches not sent to a peer whose queue was full.",
                      node.txs.sends_dropped)
        yield gauge("node_event_loop_lag_seconds", "How late the event loop runs (recent, decaying).",
                    node.loop_lag.seconds)
        yield gauge("node_event_loop_lag_worst_seconds",
                    "The latest the event loop has run since the node started.", node.loop_lag.worst)
        pauses = node.gc_pauses
        seconds = CounterMetricFamily("bizra_node_gc_pause_seconds",
                                      "Seconds the garbage collector stopped the node, by generation.",
                                      labels=["generation"])
        for generation, spent in enumerate(pauses.seconds):
            seconds.add_metric([str(generation)], spent)
        yield seconds
        yield gauge("node_gc_longest_pause_seconds", "The longest pause of the garbage collector.",
                    pauses.longest)
        yield gauge("p2p_peers", "Connected peers.", len(node.network.peers()))
        yield counter("p2p_gossip_dropped", "Gossip a full subscriber could not take.", node.network.dropped)
        yield counter("p2p_gossip_duplicates", "Gossip received again from another peer, dropped unchecked.",
                      node.network.duplicates)
        yield counter("p2p_rate_limited", "Peer messages refused over their rate limit.",
                      node.network.rate_limited)
        yield counter("consensus_bodies_not_gossiped",
                      "Block bodies too large for gossip, left for peers to fetch.",
                      node.consensus_net.dropped_bodies)
        yield counter("consensus_compact_txs_named", "Txs named by the compact blocks this node fetched.",
                      node.consensus_net.txs_named)
        yield counter("consensus_compact_txs_found",
                      "Txs of fetched compact blocks found in this node's mempool (not fetched).",
                      node.consensus_net.txs_found)
        yield counter("consensus_compact_pushes_sent",
                      "Compact proposals too large for gossip this node pushed to a peer.",
                      node.consensus_net.pushes_sent)
        yield counter("consensus_compact_pushes_used",
                      "Compact proposals peers pushed to this node for a block it did not have yet.",
                      node.consensus_net.pushes_used)
        yield counter("consensus_whole_block_fetches",
                      "Blocks fetched whole: their compact form could not be had or rebuilt.",
                      node.consensus_net.whole_fetches)
        yield counter("p2p_signature_batches", "Batches of gossiped signatures checked off the event loop.",
                      node.signatures.batches)
        yield counter("p2p_signatures_busy",
                      "Gossiped messages ignored because the signature checker was full.",
                      node.signatures.busy)
        yield counter("rpc_events_dropped",
                      "WebSocket sessions whose subscriptions were canceled for falling 1,000 blocks behind.",
                      node.events.overflows)
        yield gauge("blocksync_syncing", "1 while the node is catching up.", 1 if node.catching_up() else 0)
        yield gauge("blocksync_target_height", "The highest height the node's peers report.",
                    node.sync.target())
        yield counter("blocksync_blocks", "Blocks applied by block sync since the start.",
                      node.sync.blocks_applied)


class Metrics:
    """The node's registry: its state when scraped, and RPC latency per method."""

    def __init__(self, node: NodeView) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_NodeCollector(node))
        self.rpc_latency = Histogram("bizra_rpc_request_duration_seconds", "JSON-RPC request latency.",
                                     ["method"], registry=self.registry,
                                     buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 5, 10))

    def render(self) -> bytes:
        return generate_latest(self.registry)
