"""The Grafana dashboard (``deploy/grafana/bizra-node.json``) reads what a node exports:
every query names at least one metric, and every metric it names is a series in a
node's ``/metrics``; its panels read a Prometheus data source chosen on import."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from chain.params import Params
from node import devnet
from node.config import load
from node.daemon import Node

DASHBOARD = Path(__file__).parents[3] / "deploy" / "grafana" / "bizra-node.json"

_NOT_NAMES = re.compile(r'"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring)\s*\([^)]*\)')
"""What in a PromQL query is not a metric name: strings, label matchers, ranges, and
the labels of by, without, on and ignoring."""
_IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*(?![A-Za-z0-9_:]|\s*\()")
"""A whole name (not the unit of a duration such as ``5m``) not followed by ``(``: a
metric's (a function's is followed by its arguments)."""
_LABEL_VALUES = re.compile(r"label_values\((.*),\s*\w+\s*\)")
"""A variable's query ``label_values(QUERY, LABEL)``."""
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names in the PromQL query ``expr``."""
    text = _NOT_NAMES.sub(" ", expr.replace("$__rate_interval", ""))
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def queries(dashboard: dict[str, Any]) -> Iterator[str]:
    """Every query of the dashboard: its panels' (in rows too) and its variables'."""
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop()
        panels += panel.get("panels", [])
        yield from (target["expr"] for target in panel.get("targets", []))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            values = _LABEL_VALUES.fullmatch(text)
            yield values.group(1) if values else text


def exported(tmp_path: Path) -> set[str]:
    """The names of the series a node's ``/metrics`` has (an RPC latency observed, so
    that the histogram's series appear)."""
    (home,) = devnet.create(tmp_path, 1, chain_id="bizra-devnet-7", p2p_port=26_656, rpc_port=8_080,
                            params=Params())
    node = Node(home.home, load(home.home.config_file))
    try:
        node.metrics.rpc_latency.labels("status").observe(0.003)
        text = node.metrics.render().decode()
    finally:
        node.close()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metric_names_are_read_from_promql() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, method) (rate(a_bucket{instance=~"$instance", x="y(z)"}'
            '[$__rate_interval]))) / on (instance) b_total offset 5m and c')
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def test_every_query_names_metrics_a_node_exports(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    series = exported(tmp_path)
    named: set[str] = set()
    for expr in queries(dashboard):
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= series, f"{expr!r} names {sorted(names - series)}, which the node does not export"
        named |= names
    assert len(named) >= 20  # chain, sync, mempool, peers, RPC and the event loop


def test_the_panels_read_the_prometheus_source_chosen_on_import() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    (source,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": f"${{{source['name']}}}"}
            assert panel["targets"]
