"""A node's JSON-RPC result against CometBFT v0.38's documented one
(``tests/fixtures/cometbft/<method>.json``), key by key and type by type.

:func:`compare` walks the documented result. Every key in it must be in the node's
answer, its value of the same JSON type (null, bool, number, string, array, object);
each item of an answer's array is compared with the document's first item; a string
must have the format CometBFT's Go type gives it (:data:`FORMATS`). Keys the node sends
and the document lacks are not differences (they are returned apart, as extras).

Where a path may differ, a :class:`Rule` says how and why: the document is older than
v0.38 there (the value v0.38's types give replaces the document's, or the key has its
v0.38 name), or the node differs on purpose, or a devnet has nothing to show there (an
empty list). A rule applies at its path only; nothing below a path is skipped unless
the rule accepts another JSON type there.

Paths are dotted key names from the result's root, ``[]`` standing for any item of an
array: ``block.last_commit.signatures[].signature``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cometbft"

Format = Literal["int", "HEX", "node_id", "base64", "time", "text"]
"""``int``: a decimal integer, as cmtjson writes Go's int, int64 and uint64 (and jsonpb
its int64); ``HEX``: upper-case hex of whole bytes, as ``HexBytes``; ``node_id``: 40
lower-case hex digits, as ``p2p.ID``; ``base64``: standard base64 with padding, as
``[]byte``; ``time``: RFC 3339 in UTC as Go's RFC3339Nano writes it (no trailing zeros in
the fraction); ``text``: any string."""

_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_HEX = re.compile(r"(?:[0-9A-F]{2})*")
_NODE_ID = re.compile(r"[0-9a-f]{40}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,8}[1-9])?Z")

FORMATS: dict[str, Format] = {
    **dict.fromkeys((
        "height", "last_height", "block_height", "initial_height", "latest_block_height",
        "earliest_block_height", "last_block_height", "total_count", "n_txs", "total", "total_bytes",
        "n_peers", "count", "voting_power", "proposer_priority", "power", "max_bytes", "max_gas",
        "max_age_num_blocks", "max_age_duration", "max_age", "time_iota_ms", "gas_wanted", "gas_used",
        "app_version", "block_size", "num_txs", "index", "round", "block", "app", "p2p",
        "vote_extensions_enable_height", "Duration", "Idle", "TimeRem", "Bytes", "Samples", "InstRate",
        "CurRate", "AvgRate", "PeakRate", "BytesRem", "SendQueueCapacity", "SendQueueSize", "Priority",
        "RecentlySent"), "int"),
    **dict.fromkeys((
        "hash", "address", "validator_address", "proposer_address", "last_commit_hash", "data_hash",
        "validators_hash", "next_validators_hash", "consensus_hash", "app_hash", "last_results_hash",
        "evidence_hash", "latest_block_hash", "latest_app_hash", "earliest_block_hash", "earliest_app_hash",
        "root_hash", "proposal_block_hash", "locked_block_hash", "valid_block_hash", "channels"), "HEX"),
    **dict.fromkeys((
        "signature", "tx", "txs", "data", "leaf_hash", "aunts", "last_block_app_hash", "pub_key.value",
        "ed25519", "response.key", "response.value", "ops.key"), "base64"),
    **dict.fromkeys(("time", "timestamp", "genesis_time", "latest_block_time", "earliest_block_time",
                     "start_time", "Start"), "time"),
    "node_info.id": "node_id",
    **dict.fromkeys(("attributes.key", "attributes.value", "response.data"), "text"),
}
"""The format of a string by the key that holds it (``txs``: each of its items), or by
its parent's key and its own (``pub_key.value``), the longer match winning; from the Go
types of CometBFT v0.38 (``rpc/core/types/responses.go`` and the types it names). A
path whose key means another type in one result has a :class:`Rule` with a format."""


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()
"""A :class:`Rule`'s ``expect`` when the document's value stands."""


@dataclass(frozen=True)
class Rule:
    """How the node's answer may differ at one path, and ``why``.

    - ``expect``: CometBFT v0.38's value here, compared instead of the document's (which
      v0.38's Go types contradict);
    - ``rename``: the key's name in v0.38 (the path's last key): the answer must have that
      key, compared with the document's value (or ``expect``); rules below it use the
      new name;
    - ``absent``: the key may be missing;
    - ``empty``: the array may be empty (else it must have items, as the document's);
    - ``also``: other JSON types the value may have; such a value is not looked into;
    - ``format``: the string's format here, instead of :data:`FORMATS`'s.
    """

    why: str
    expect: Any = KEEP
    rename: str | None = None
    absent: bool = False
    empty: bool = False
    also: tuple[str, ...] = ()
    format: Format | None = None


@dataclass
class Outcome:
    """What :func:`compare` found: the differences, and the answer's keys the document
    lacks (extras, not differences)."""

    problems: list[str]
    extras: list[str]


def fixture(method: str) -> Any:
    """The documented result of ``method``."""
    return json.loads((FIXTURES / f"{method}.json").read_text())["result"]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def format_problem(form: Format, text: str) -> str | None:
    """Why ``text`` is not of format ``form``; None if it is."""
    if form == "int":
        ok = _INT.fullmatch(text) is not None
    elif form == "HEX":
        ok = _HEX.fullmatch(text) is not None
    elif form == "node_id":
        ok = _NODE_ID.fullmatch(text) is not None
    elif form == "time":
        ok = _TIME.fullmatch(text) is not None
    elif form == "base64":
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            ok = False
        else:
            ok = len(text) % 4 == 0
    else:
        ok = True
    return None if ok else f"{text[:80]!r} is not {form}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _format_of(path: str, rules: Mapping[str, Rule]) -> Format | None:
    rule = rules.get(path)
    if rule is not None and rule.format is not None:
        return rule.format
    keys = [k for k in path.replace("[]", "").split(".") if k]
    for n in (2, 1):
        if len(keys) >= n and ".".join(keys[-n:]) in FORMATS:
            return FORMATS[".".join(keys[-n:])]
    return None


def compare(expected: Any, actual: Any, rules: Mapping[str, Rule] | None = None) -> Outcome:
    """``actual`` (a node's result) against ``expected`` (the documented one) under
    ``rules`` (by path); see the module docstring."""
    outcome = Outcome([], [])
    _compare(expected, actual, "", rules or {}, outcome)
    outcome.problems = list(dict.fromkeys(outcome.problems))  # an array's items repeat theirs
    outcome.extras = list(dict.fromkeys(outcome.extras))
    return outcome


def _compare(expected: Any, actual: Any, path: str, rules: Mapping[str, Rule], out: Outcome) -> None:
    where = path or "(result)"
    rule = rules.get(path)
    if rule is not None and rule.expect is not KEEP:
        expected = rule.expect
    want, got = json_type(expected), json_type(actual)
    if got != want:
        if rule is None or got not in rule.also:
            out.problems.append(f"{where}: {got} where CometBFT has {want}")
        return
    if want == "object":
        for key, value in expected.items():
            child = _join(path, key)
            child_rule = rules.get(child)
            name = key
            if child_rule is not None and child_rule.rename:
                name = child_rule.rename
                value = value if child_rule.expect is KEEP else child_rule.expect
            if name not in actual:
                if child_rule is None or not child_rule.absent:
                    out.problems.append(f"{_join(path, name)}: missing")
                continue
            _compare(value, actual[name], _join(path, name), rules, out)
        renamed = {r.rename for p, r in rules.items() if r.rename and p.rpartition(".")[0] == path}
        out.extras.extend(_join(path, k) for k in actual if k not in expected and k not in renamed)
    elif want == "array":
        if not actual:
            if expected and (rule is None or not rule.empty):
                out.problems.append(f"{where}: empty where CometBFT has items")
            return
        for item in actual:
            if expected:
                _compare(expected[0], item, f"{path}[]", rules, out)
    elif want == "number":
        if isinstance(expected, int) and not isinstance(actual, int):
            out.problems.append(f"{where}: {actual!r} where CometBFT has an integer")
    elif want == "string":
        form = _format_of(path, rules)
        problem = format_problem(form, actual) if form is not None else None
        if problem is not None:
            out.problems.append(f"{where}: {problem}")


def paths(expected: Any, rules: Mapping[str, Rule], path: str = "") -> Iterator[str]:
    """Every path of ``expected`` as :func:`compare` walks it under ``rules`` (renamed
    keys by their new names, replaced values by the replacements'): where a rule can
    apply."""
    yield path
    rule = rules.get(path)
    if rule is not None and rule.expect is not KEEP:
        expected = rule.expect
    if isinstance(expected, dict):
        for key, value in expected.items():
            child_rule = rules.get(_join(path, key))
            if child_rule is not None and child_rule.rename:
                yield _join(path, key)
                key = child_rule.rename
                value = value if child_rule.expect is KEEP else child_rule.expect
            yield from paths(value, rules, _join(path, key))
    elif isinstance(expected, list) and expected:
        yield from paths(expected[0], rules, f"{path}[]")
