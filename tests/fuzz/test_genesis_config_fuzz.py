"""Fuzzing the two files an operator hands the node: the genesis
(``chain.genesis.parse_genesis`` and ``genesis_hash``) and ``config.toml`` with its
``BIZRA_*`` environment variables (``node.config.load``).

Every refusal is an InvalidGenesis or a ConfigError, never another exception: random
bytes, random JSON, valid genesis files with bytes changed or one field replaced, every
integer parameter at any value (accepted exactly within the rules of §10.2), and
TOML documents of every shape (unknown sections and keys, values of every TOML type,
deep nesting, invalid text). What is accepted is usable: a genesis reads back from its
canonical JSON, whose hash is the SHA-256 of its bytes; a configuration loads back from
what ``render`` writes.

``BIZRA_FUZZ_EXAMPLES`` raises every test's number of examples (for long runs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chain.errors import InvalidGenesis
from chain.genesis import Genesis, genesis_hash, parse_genesis
from chain.params import PPM, Params
from chain.sizes import BLOCK_TXS_LIMIT, TX_BYTES_LIMIT, VALIDATORS_LIMIT
from node.config import Config, ConfigError, load, render

from chainkit import LocalChain
from fuzzkit import fuzz

# --- genesis ------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
VALID_GENESIS_FILES = [
    *(path.read_bytes() for path in sorted((REPO / "genesis").glob("*.json"))),
    LocalChain(validators=3, users=2).genesis.canonical_json(),
    json.dumps(LocalChain(validators=1, users=0).genesis.to_json(), indent=2).encode(),
]
VALID_DOCS = [json.loads(data) for data in VALID_GENESIS_FILES]


def parse_or_refuse(data: bytes) -> Genesis | None:
    """``parse_genesis`` of ``data``: the genesis, or None when it raised InvalidGenesis
    (with a message). An accepted genesis reads back from its canonical JSON as itself,
    that JSON is its own canonical form, and its hash is the SHA-256 of those bytes."""
    try:
        genesis = parse_genesis(data)
    except InvalidGenesis as exc:
        assert str(exc)
        return None
    canonical = genesis.canonical_json()
    again = parse_genesis(canonical)
    assert again == genesis and again.canonical_json() == canonical
    assert genesis_hash(canonical) == hashlib.sha256(canonical).digest()
    return genesis


def genesis_hash_or_refuse(data: bytes) -> bytes | None:
    """``genesis_hash`` of ``data``, or None when it raised InvalidGenesis; it hashes
    every file ``parse_genesis`` accepts."""
    try:
        return genesis_hash(data)
    except InvalidGenesis as exc:
        assert str(exc)
        return None


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(2**70), 2**70).map(str),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
              st.sampled_from(["", "0", "1", "-1", "1e3", "٣", "²", "9" * 5_000, "bizra1", "0x" + "00" * 20,
                               "tendermint/PubKeyEd25519", "AAAA", "A" * 43 + "=",
                               "2026-11-24T11:39:02.123456789Z", "0001-01-01T00:00:00Z",
                               "9999-12-31T23:59:59.999999999-23:59", "2262-04-11T23:47:16.854775808Z"])),
    lambda c: st.one_of(st.lists(c, max_size=5), st.dictionaries(st.text(max_size=15), c, max_size=5)),
    max_leaves=20,
)
"""JSON values, with strings that look like integers, times, keys and addresses."""


def _locations(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_locations(v, (*path, k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(_locations(v, (*path, i)))
    return out


def _edited(doc: Any, path: tuple[Any, ...], op: str, new: Any) -> Any:
    doc = json.loads(json.dumps(doc))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "replace":
        parent[last] = new
    elif op == "remove":
        del parent[last]
    elif isinstance(parent, dict):
        parent[f"extra-{new!r}"[:20]] = new
    else:
        parent.insert(last, new)
    return doc


@st.composite
def edited_genesis(draw: st.DrawFn) -> bytes:
    """A valid genesis with one field replaced by another JSON value, removed, or one
    more field or item inserted next to it."""
    doc = draw(st.sampled_from(VALID_DOCS))
    path = draw(st.sampled_from(_locations(doc)))
    op = draw(st.sampled_from(["replace", "replace", "remove", "insert"]))
    new = draw(json_values)
    return json.dumps(_edited(doc, path, op, new), ensure_ascii=draw(st.booleans())).encode()


@st.composite
def byte_mutations(draw: st.DrawFn, valid: list[bytes]) -> bytes:
    """A valid file with one to three bytes flipped, changed, deleted or inserted, or
    cut short."""
    data = bytearray(draw(st.sampled_from(valid)))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "delete", "insert"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from(b'0123456789"{}[],:.-+eE \\\x00\xff'))
        elif op == "truncate":
            del data[at:]
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 4))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


def test_the_valid_genesis_files_are_accepted() -> None:
    """The genesis files the fuzzing starts from are valid."""
    for data in VALID_GENESIS_FILES:
        assert parse_or_refuse(data) is not None


@fuzz(300)
@given(st.binary(max_size=300))
@example(b"[" * 100_000)
@example(b'{"a":' * 50_000)
@example(b"\xef\xbb\xbf{}")
@example(b'"\\ud800"')
@example(b"1" * 5_000)
@example(b"NaN")
@example(b"1e999")
def test_random_bytes_are_refused_with_invalid_genesis(data: bytes) -> None:
    """Random bytes, deep nesting, a BOM, lone surrogates, huge numbers: InvalidGenesis."""
    if parse_or_refuse(data) is not None:
        assert genesis_hash_or_refuse(data) is not None
    else:
        genesis_hash_or_refuse(data)


@fuzz(200)
@given(json_values)
def test_random_json_is_refused_with_invalid_genesis(doc: Any) -> None:
    """Any JSON document: InvalidGenesis, never another exception."""
    parse_or_refuse(json.dumps(doc).encode())


@fuzz(300)
@given(edited_genesis())
def test_a_genesis_with_one_field_changed_is_refused_or_usable(data: bytes) -> None:
    """A valid genesis with one field replaced (by any JSON value), removed or added:
    InvalidGenesis naming the field, or a genesis that reads back from its canonical
    JSON."""
    parse_or_refuse(data)


@fuzz(500)
@given(byte_mutations(VALID_GENESIS_FILES))
def test_a_genesis_file_with_bytes_changed_is_refused_or_usable(data: bytes) -> None:
    """A valid genesis file with bytes flipped, changed, deleted, inserted or cut:
    InvalidGenesis, or a genesis that reads back from its canonical JSON."""
    if parse_or_refuse(data) is not None:
        assert genesis_hash_or_refuse(data) is not None
    else:
        genesis_hash_or_refuse(data)


INTEGER_PARAMS = sorted(name for name, value in Params().to_json().items() if isinstance(value, int))
PPM_PARAMS = {"max_penalty", "validation_threshold", "lambda", "slash_fraction"}
POSITIVE_PARAMS = {"epoch_length", "max_tx_bytes", "max_block_bytes", "max_block_txs", "max_validators",
                   "block_time_ms"}
CEILINGS = {"max_tx_bytes": TX_BYTES_LIMIT, "max_block_txs": BLOCK_TXS_LIMIT,
            "max_validators": VALIDATORS_LIMIT}


def param_refusal(name: str, value: int, bond: int) -> str | None:
    """The rules of §10.2 restated: how a genesis whose validators bond ``bond`` and
    whose parameter ``name`` is ``value`` is refused (the start of the message), or None."""
    if not 0 <= value < 2**63:
        return f"params.{name}: must be a non-negative 64-bit integer"
    if name in PPM_PARAMS and value > PPM:
        return f"params.{name}: a fraction in ppm"
    if name in POSITIVE_PARAMS and value == 0:
        return f"params.{name}: must be positive"
    if name in CEILINGS and value > CEILINGS[name]:
        return f"params.{name}: at most {CEILINGS[name]}"
    if name == "min_bond" and value > bond:
        return "validators[0].bond"
    return None


@fuzz(400)
@given(st.sampled_from(INTEGER_PARAMS),
       st.one_of(st.integers(-3, 2**64), st.integers(0, 3),
                 st.sampled_from([PPM, PPM + 1, TX_BYTES_LIMIT, TX_BYTES_LIMIT + 1, BLOCK_TXS_LIMIT,
                                  BLOCK_TXS_LIMIT + 1, VALIDATORS_LIMIT, VALIDATORS_LIMIT + 1, 2**63 - 1,
                                  2**63])))
def test_a_parameter_is_accepted_exactly_within_its_rules(name: str, value: int) -> None:
    """Every integer parameter (``fee_per_byte`` among them) at any value: accepted
    exactly when the rules allow it (the ceilings the decoders need included), refused
    naming it otherwise."""
    doc = json.loads(json.dumps(VALID_DOCS[-1]))
    doc["params"][name] = value
    expected = param_refusal(name, value, int(doc["validators"][0]["bond"]))
    try:
        genesis = parse_genesis(json.dumps(doc).encode())
    except InvalidGenesis as exc:
        assert expected is not None and str(exc).startswith(expected), (str(exc), expected)
        return
    assert expected is None and genesis.params.to_json()[name] == value


# --- config -------------------------------------------------------------------------------

SECTIONS = ["p2p", "rpc", "mempool", "log", "storage"]
KEYS = ["moniker", "network", "host", "port", "external_addresses", "bootnodes", "target_peers",
        "max_peers", "requests_per_minute", "max_body_bytes", "max_batch", "timeout_broadcast_tx_commit_s",
        "max_txs", "max_bytes", "max_per_sender", "max_loop_lag_ms", "level", "format", "keep_heights"]


def toml_string(text: str) -> str:
    escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}"
                      if ord(c) < 0x10000 else f"\\U{ord(c):08x}" for c in text)
    return f'"{escaped}"'


def toml_value(value: Any) -> str:
    """``value`` written as TOML (floats as TOML writes infinities and NaN)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) \
            else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


_toml_scalars = st.one_of(
    st.integers(-1, 70_000), st.integers(), st.booleans(), st.floats(), st.text(max_size=30),
    st.sampled_from(["info", "debug", "json", "text", "0.0.0.0", "bizra-testnet-001", ""]))
toml_values = st.one_of(
    _toml_scalars, _toml_scalars, st.lists(_toml_scalars, max_size=3),
    st.lists(st.lists(_toml_scalars, max_size=2), max_size=2),
    st.dictionaries(st.text(max_size=6), _toml_scalars, max_size=2),
)
"""TOML values: scalars of every type, arrays (nested too) and inline tables."""
names = st.one_of(st.sampled_from(KEYS), st.sampled_from(SECTIONS), st.text(max_size=10),
                  st.sampled_from([f"{s}.{k}" for s in SECTIONS for k in KEYS]))


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    """A TOML document: top-level keys, then sections (known or not) of keys (known or
    not) with values of every TOML type, dates and times among them."""
    lines = []
    for _ in range(draw(st.integers(0, 2))):
        lines.append(f"{toml_string(draw(names))} = {toml_value(draw(toml_values))}")
    for _ in range(draw(st.integers(0, 2))):
        section = draw(st.one_of(st.sampled_from(SECTIONS), names))
        lines.append(f"[{toml_string(section)}]")
        for _ in range(draw(st.integers(0, 3))):
            value = draw(st.one_of(toml_values.map(toml_value),
                                   st.sampled_from(["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00",
                                                    "0x1F", "0o17", "0b1", "1_000", "+5", "'literal'",
                                                    '"""multi\nline"""', "[[1], ['a']]"])))
            lines.append(f"{toml_string(draw(names))} = {value}")
    return "\n".join(lines) + "\n"


@st.composite
def text_mutations(draw: st.DrawFn) -> str:
    """The configuration ``render`` writes, with a few characters changed."""
    text = list(render(Config()))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text) - 1))
        text[at:at + draw(st.integers(0, 3))] = draw(st.text(max_size=3))
    return "".join(text)


@pytest.fixture(scope="module")
def config_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory) / "config.toml"


def load_or_refuse(path: Path, environ: dict[str, str] | None = None,
                   overrides: dict[str, Any] | None = None) -> Config | None:
    """``load`` of ``path``: the configuration, or None when it raised ConfigError (with
    a message). An accepted configuration loads back from what ``render`` writes."""
    try:
        config = load(path, environ or {}, overrides)
    except ConfigError as exc:
        assert str(exc)
        return None
    path.write_text(render(config), encoding="utf-8")
    assert load(path, {}) == config
    return config


@fuzz(250)
@given(toml_documents())
@example("a = " + "[" * 5_000 + "]" * 5_000 + "\n")
@example("a = " + "{b = " * 5_000 + "1" + "}" * 5_000 + "\n")
@example("[p2p]\nport = 99999999999999999999999999\n")
@example('"p2p.port" = 5\n')
@example("[p2p.extra]\nport = 1\n")
@example("moniker = " + "1" * 5_000 + "\n")
def test_any_toml_document_is_loaded_or_refused_with_config_error(config_file: Path, text: str) -> None:
    """Any TOML document (and deeply nested or huge values): a configuration, or a
    ConfigError naming the key."""
    config_file.write_text(text, encoding="utf-8")
    load_or_refuse(config_file)


@fuzz(300)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                 text_mutations().map(str.encode)))
@example(b"\xff\xfe")
@example(b"moniker = '\xc3'")
def test_any_bytes_are_loaded_or_refused_with_config_error(config_file: Path, data: bytes) -> None:
    """Any bytes as config.toml (not UTF-8, not TOML, a valid file with characters
    changed): a configuration, or a ConfigError."""
    config_file.write_bytes(data)
    load_or_refuse(config_file)


@fuzz(300)
@given(st.dictionaries(st.one_of(st.sampled_from([f"BIZRA_{s.upper()}_{k.upper()}" for s in SECTIONS
                                                 for k in KEYS]),
                                 st.sampled_from([f"BIZRA_{k.upper()}" for k in KEYS]),
                                 st.text(max_size=12).map(lambda s: "BIZRA_" + s), st.just("BIZRA_")),
                       st.one_of(st.text(max_size=30), st.integers().map(str), st.just("9" * 5_000),
                                 st.just("١٢")),
                       max_size=4),
       st.dictionaries(st.one_of(st.sampled_from([f"{s}.{k}" for s in SECTIONS for k in KEYS]), names),
                       toml_values, max_size=2))
def test_any_environment_and_overrides_are_loaded_or_refused_with_config_error(
        config_file: Path, environ: dict[str, str], overrides: dict[str, Any]) -> None:
    """Any ``BIZRA_*`` variables and command-line overrides over an empty file: a
    configuration, or a ConfigError naming the variable or key."""
    config_file.write_text("", encoding="utf-8")
    load_or_refuse(config_file, environ, overrides)


unicode = st.text(st.characters(codec="utf-8"), max_size=40)
"""Any text UTF-8 can hold (control characters included)."""


@fuzz(200)
@given(unicode.filter(bool), st.lists(unicode, max_size=3).map(tuple))
def test_a_configuration_loads_back_from_what_render_writes(
        config_file: Path, moniker: str, bootnodes: tuple[str, ...]) -> None:
    """A configuration with any moniker and bootnodes of any text is written by
    ``render`` as TOML that ``load`` reads back as the same configuration."""
    config = dataclasses.replace(Config(), moniker=moniker,
                                 p2p=dataclasses.replace(Config().p2p, bootnodes=bootnodes))
    config_file.write_text(render(config), encoding="utf-8")
    assert load(config_file, {}) == config


@pytest.mark.parametrize("moniker", ["a\x1fb", "line\nbreak", "del\x7f", "nul\x00"])
def test_a_moniker_with_control_characters_loads_back_from_what_render_writes(
        config_file: Path, moniker: str) -> None:
    """A moniker the configuration accepts (from ``--moniker`` or ``BIZRA_MONIKER``)
    holding a control character is written by ``render`` as TOML that ``load`` reads
    back as the same configuration."""
    config = dataclasses.replace(Config(), moniker=moniker)
    config_file.write_text(render(config), encoding="utf-8")
    assert load(config_file, {}) == config
