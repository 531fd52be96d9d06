"""The genesis file (§10): parsing, validation, hash and devnet genesis (chain.genesis)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from chain.address import bech32_encode, format_address, to_5bit
from chain.crypto import PrivateKey, address_of
from chain.errors import InvalidGenesis
from chain.genesis import (
    DEVNET_BALANCE,
    PUB_KEY_TYPE,
    Genesis,
    GenesisAccount,
    GenesisValidator,
    genesis_hash,
    make_devnet_genesis,
    operator_key_for,
    parse_genesis,
)
from chain.params import USEED_PER_SEED, Params
from chain.timefmt import parse_rfc3339_ns

TIME = "2026-11-24T11:39:02.123456789Z"
TIME_NS = parse_rfc3339_ns(TIME)
KEYS = [PrivateKey.from_seed(bytes([n + 1]) * 32) for n in range(3)]
GENESIS = make_devnet_genesis("bizra-devnet-1", KEYS, TIME_NS)


def doc() -> dict[str, Any]:
    return copy.deepcopy(GENESIS.to_json())


def dump(obj: Any, **kwargs: Any) -> bytes:
    return json.dumps(obj, **kwargs).encode()


def _reorder(obj: Any) -> Any:
    """The same JSON with every object's keys in reverse order."""
    if isinstance(obj, dict):
        return {k: _reorder(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [_reorder(item) for item in obj]
    return obj


# ---------------------------------------------------------------------------------------
# Devnet genesis


def test_devnet_genesis() -> None:
    g = GENESIS
    assert g.chain_id == "bizra-devnet-1"
    assert g.genesis_time_ns == TIME_NS
    assert g.initial_height == 1
    assert g.params == Params()
    assert [v.pub_key for v in g.validators] == [k.public_key for k in KEYS]
    assert [v.moniker for v in g.validators] == ["validator-0", "validator-1", "validator-2"]
    assert all(v.bond == Params().min_bond for v in g.validators)
    operators = [address_of(operator_key_for(k).public_key) for k in KEYS]
    assert [v.operator for v in g.validators] == operators
    assert g.accounts == tuple(GenesisAccount(op, DEVNET_BALANCE) for op in operators)
    assert DEVNET_BALANCE == 1_000_000 * USEED_PER_SEED


def test_operator_key_derivation() -> None:
    consensus = KEYS[0]
    operator = operator_key_for(consensus)
    assert operator.seed == hashlib.sha256(b"bizra/operator/v1" + consensus.seed).digest()
    assert operator.public_key != consensus.public_key
    assert operator_key_for(consensus).seed == operator.seed
    assert address_of(operator.public_key) != address_of(consensus.public_key)


def test_devnet_genesis_options() -> None:
    params = Params(min_bond=5, epoch_length=10)
    g = make_devnet_genesis("bizra-devnet-7", KEYS[:1], 0, params=params, bond=50, balance=7)
    assert g.params == params
    assert g.validators[0].bond == 50
    assert g.accounts[0].balance == 7
    assert make_devnet_genesis("bizra-devnet-7", KEYS[:1], 0, params=params).validators[0].bond == 5


def test_devnet_genesis_refuses_a_key_twice() -> None:
    with pytest.raises(InvalidGenesis,
                       match=r"validators\[1\].pub_key: same key as validators\[0\]"):
        make_devnet_genesis("bizra-devnet-1", [KEYS[0], KEYS[0]], TIME_NS)


def test_devnet_genesis_refuses_a_bond_below_min_bond() -> None:
    with pytest.raises(InvalidGenesis, match=r"validators\[0\].bond: 1 is below params.min_bond"):
        make_devnet_genesis("bizra-devnet-1", KEYS, TIME_NS, bond=1)


# ---------------------------------------------------------------------------------------
# Round trips and the hash


def test_round_trip() -> None:
    assert parse_genesis(GENESIS.canonical_json()) == GENESIS
    assert parse_genesis(dump(GENESIS.to_json(), indent=2)) == GENESIS
    assert parse_genesis(GENESIS.canonical_json()).to_json() == GENESIS.to_json()


def test_to_json_shape() -> None:
    d = GENESIS.to_json()
    assert list(d) == ["chain_id", "genesis_time", "initial_height", "params", "validators",
                       "accounts"]
    assert d["genesis_time"] == TIME
    assert d["initial_height"] == "1"
    assert d["params"] == Params().to_json()
    v = d["validators"][0]
    assert v["pub_key"] == {"type": PUB_KEY_TYPE,
                            "value": base64.b64encode(KEYS[0].public_key).decode()}
    assert v["operator"] == format_address(GENESIS.validators[0].operator)
    assert v["bond"] == str(Params().min_bond)
    assert d["accounts"][0] == {"address": format_address(GENESIS.accounts[0].address),
                                "balance": str(DEVNET_BALANCE)}


def test_canonical_json_is_sorted_and_compact() -> None:
    data = GENESIS.canonical_json()
    assert data == json.dumps(GENESIS.to_json(), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()
    assert b" " not in data
    assert b"\n" not in data


def test_hash_is_sha256_of_canonical_json() -> None:
    data = GENESIS.canonical_json()
    assert genesis_hash(data) == hashlib.sha256(data).digest()


def test_hash_ignores_key_order_and_whitespace() -> None:
    expected = genesis_hash(GENESIS.canonical_json())
    assert genesis_hash(dump(doc(), indent=4)) == expected
    assert genesis_hash(dump(_reorder(doc()))) == expected
    assert genesis_hash(b"\n\t " + dump(_reorder(doc()), indent="\t") + b"\r\n") == expected


def test_hash_keeps_non_ascii_text_as_utf8() -> None:
    d = doc()
    d["validators"][0]["moniker"] = "nœud-é"
    escaped, raw = dump(d), dump(d, ensure_ascii=False)
    assert escaped != raw
    assert genesis_hash(escaped) == genesis_hash(raw)
    assert parse_genesis(raw).validators[0].moniker == "nœud-é"


def test_hash_changes_with_any_value() -> None:
    d = doc()
    d["accounts"][0]["balance"] = str(DEVNET_BALANCE + 1)
    assert genesis_hash(dump(d)) != genesis_hash(dump(doc()))


def test_hash_refuses_what_is_not_json() -> None:
    with pytest.raises(InvalidGenesis, match="not JSON"):
        genesis_hash(b"{")


# ---------------------------------------------------------------------------------------
# Accepted spellings


def test_integers_as_numbers_or_strings() -> None:
    d = doc()
    d["initial_height"] = 1
    d["validators"][0]["bond"] = Params().min_bond
    d["accounts"][0]["balance"] = DEVNET_BALANCE
    assert parse_genesis(dump(d)) == GENESIS
    d["initial_height"] = "5"
    assert parse_genesis(dump(d)).initial_height == 5


def test_addresses_as_hex_or_upper_case_bech32() -> None:
    d = doc()
    d["validators"][0]["operator"] = "0x" + GENESIS.validators[0].operator.hex()
    d["validators"][1]["operator"] = GENESIS.validators[1].operator.hex().upper()
    d["accounts"][0]["address"] = d["accounts"][0]["address"].upper()
    assert parse_genesis(dump(d)) == GENESIS


def test_time_with_offset() -> None:
    d = doc()
    d["genesis_time"] = "2026-11-24T13:39:02.123456789+02:00"
    assert parse_genesis(dump(d)) == GENESIS


def test_no_accounts() -> None:
    d = doc()
    d["accounts"] = []
    assert parse_genesis(dump(d)).accounts == ()


# ---------------------------------------------------------------------------------------
# Refusals: each names its field


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets the field at a dotted path (list indices as numbers)."""
    *parents, last = path.split(".")

    def mutate(d: dict[str, Any]) -> None:
        target: Any = d
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value
    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def mutate(d: dict[str, Any]) -> None:
        target: Any = d
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[last]
    return mutate


def _copy(source: str, dest: str) -> Callable[[dict[str, Any]], None]:
    def get(d: dict[str, Any], path: str) -> Any:
        target: Any = d
        for part in path.split("."):
            target = target[int(part)] if part.isdigit() else target[part]
        return target

    def mutate(d: dict[str, Any]) -> None:
        _set(dest, copy.deepcopy(get(d, source)))(d)
    return mutate


KEY0 = GENESIS.validators[0].pub_key
B64_31 = base64.b64encode(bytes(31)).decode()
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# The same 32 bytes as KEY0, spelled with non-zero padding bits in the last character.
B64_SLOPPY = base64.b64encode(KEY0).decode()[:-2] + _B64[
    _B64.index(base64.b64encode(KEY0).decode()[-2]) | 1] + "="
ZERO_ADDRESS = format_address(bytes(20))
MISTYPED_ADDRESS = ZERO_ADDRESS[:-1] + ("q" if ZERO_ADDRESS[-1] != "q" else "p")

BAD_DOCS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown top-level field", _set("extra", 1), "extra: unknown field"),
    ("chain_id missing", _delete("chain_id"), "chain_id: missing"),
    ("chain_id not text", _set("chain_id", 5), "chain_id: must be a string"),
    ("chain_id empty", _set("chain_id", ""), "chain_id: must be a non-empty string"),
    ("chain_id too long", _set("chain_id", "b" * 51), "chain_id: 51 characters, at most 50"),
    ("chain_id space", _set("chain_id", "bizra devnet"),
     "chain_id: character ' ' at index 5 is not visible ASCII"),
    ("chain_id NUL", _set("chain_id", "bizra\x00"), "chain_id: character '\\\\x00' at index 5"),
    ("chain_id non-ASCII", _set("chain_id", "bizra-é"), "chain_id: character 'é' at index 6"),
    ("genesis_time missing", _delete("genesis_time"), "genesis_time: missing"),
    ("genesis_time not text", _set("genesis_time", 0), "genesis_time: must be a string"),
    ("genesis_time garbage", _set("genesis_time", "yesterday"),
     "genesis_time: 'yesterday' is not an RFC 3339 time"),
    ("genesis_time bad day", _set("genesis_time", "2026-02-30T00:00:00Z"),
     "genesis_time: .* day 30 is not from 01 to 28"),
    ("genesis_time before 1970", _set("genesis_time", "1969-12-31T23:59:59Z"),
     "genesis_time: must be from 1970-01-01T00:00:00Z to 2262-04-11T23:47:16.854775807Z"),
    ("genesis_time after 2262", _set("genesis_time", "2262-04-11T23:47:16.854775808Z"),
     "genesis_time: must be from 1970"),
    ("initial_height zero", _set("initial_height", "0"),
     "initial_height: must be an integer from 1 to 2\\*\\*63 - 1"),
    ("initial_height 2**63", _set("initial_height", 2**63),
     "initial_height: must be an integer from 1"),
    ("initial_height negative", _set("initial_height", -1),
     "initial_height: must be a non-negative integer"),
    ("initial_height negative text", _set("initial_height", "-1"),
     "initial_height: must be a non-negative integer"),
    ("initial_height float", _set("initial_height", 1.0),
     "initial_height: must be a non-negative integer"),
    ("initial_height bool", _set("initial_height", True),
     "initial_height: must be a non-negative integer"),
    ("initial_height exponent", _set("initial_height", "1e3"),
     "initial_height: must be a non-negative integer"),
    ("initial_height padded", _set("initial_height", " 1"),
     "initial_height: must be a non-negative integer"),
    ("initial_height non-ASCII digits", _set("initial_height", "\u0661"),
     "initial_height: must be a non-negative integer"),
    ("initial_height null", _set("initial_height", None),
     "initial_height: must be a non-negative integer"),
    ("params missing", _delete("params"), "params: missing"),
    ("params not an object", _set("params", []), "params: must be an object"),
    ("params missing a name", _delete("params.min_fee"), "params.min_fee: missing"),
    ("params unknown name", _set("params.speed", 1), "params.speed: unknown parameter"),
    ("params bad value", _set("params.min_bond", "1"), "params.min_bond: must be a non-negative"),
    ("validators missing", _delete("validators"), "validators: missing"),
    ("validators not a list", _set("validators", {}), "validators: must be a JSON array"),
    ("validators empty", _set("validators", []), "validators: at least one validator is needed"),
    ("validator not an object", _set("validators.1", 5),
     "validators\\[1\\]: must be a JSON object"),
    ("validator unknown field", _set("validators.0.power", "10"),
     "validators\\[0\\].power: unknown field"),
    ("validator moniker missing", _delete("validators.2.moniker"),
     "validators\\[2\\].moniker: missing"),
    ("pub_key not an object", _set("validators.0.pub_key", "abc"),
     "validators\\[0\\].pub_key: must be a JSON object"),
    ("pub_key type", _set("validators.0.pub_key.type", "tendermint/PubKeySecp256k1"),
     "validators\\[0\\].pub_key.type: must be 'tendermint/PubKeyEd25519'"),
    ("pub_key value missing", _delete("validators.1.pub_key.value"),
     "validators\\[1\\].pub_key.value: missing"),
    ("pub_key unknown field", _set("validators.1.pub_key.extra", 1),
     "validators\\[1\\].pub_key.extra: unknown field"),
    ("pub_key not base64", _set("validators.2.pub_key.value", "!!not base64!!"),
     "validators\\[2\\].pub_key.value: not 32 bytes of base64"),
    ("pub_key unpadded", _set("validators.2.pub_key.value", base64.b64encode(KEY0).decode()[:-1]),
     "validators\\[2\\].pub_key.value: not 32 bytes of base64"),
    ("pub_key 31 bytes", _set("validators.2.pub_key.value", B64_31),
     "validators\\[2\\].pub_key.value: not 32 bytes of base64"),
    ("pub_key non-canonical", _set("validators.2.pub_key.value", B64_SLOPPY),
     "validators\\[2\\].pub_key.value: not canonical base64"),
    ("pub_key not text", _set("validators.2.pub_key.value", 7),
     "validators\\[2\\].pub_key.value: must be a string"),
    ("pub_key twice", _copy("validators.0.pub_key", "validators.2.pub_key"),
     "validators\\[2\\].pub_key: same key as validators\\[0\\]"),
    ("operator checksum", _set("validators.1.operator", MISTYPED_ADDRESS),
     "validators\\[1\\].operator: bad checksum"),
    ("operator prefix", _set("validators.1.operator", bech32_encode("cosmos", to_5bit(bytes(20)))),
     "validators\\[1\\].operator: prefix 'cosmos', expected 'bizra'"),
    ("operator short hex", _set("validators.1.operator", "0xabcd"),
     "validators\\[1\\].operator: 4 hex digits, an address has 40"),
    ("operator not text", _set("validators.1.operator", 1),
     "validators\\[1\\].operator: must be a string"),
    ("operator twice", _set("validators.1.operator", "0x" + GENESIS.validators[0].operator.hex()),
     "validators\\[1\\].operator: same operator as validators\\[0\\]"),
    ("bond text", _set("validators.0.bond", "lots"),
     "validators\\[0\\].bond: must be a non-negative integer"),
    ("bond negative", _set("validators.0.bond", -1_000_000_000),
     "validators\\[0\\].bond: must be a non-negative integer"),
    ("bond below min_bond", _set("validators.0.bond", "999999999"),
     "validators\\[0\\].bond: 999999999 is below params.min_bond 1000000000"),
    ("bond 2**63", _set("validators.0.bond", str(2**63)),
     "validators\\[0\\].bond: 9223372036854775808 is not below 2\\*\\*63"),
    ("moniker too long", _set("validators.0.moniker", "m" * 65),
     "validators\\[0\\].moniker: 65 bytes of UTF-8, at most 64"),
    ("moniker too many bytes", _set("validators.0.moniker", "é" * 33),
     "validators\\[0\\].moniker: 66 bytes of UTF-8, at most 64"),
    ("moniker lone surrogate", _set("validators.0.moniker", "\ud800"),
     "validators\\[0\\].moniker: not valid Unicode"),
    ("moniker not text", _set("validators.0.moniker", None),
     "validators\\[0\\].moniker: must be a string"),
    ("accounts missing", _delete("accounts"), "accounts: missing"),
    ("accounts not a list", _set("accounts", "none"), "accounts: must be a JSON array"),
    ("account not an object", _set("accounts.0", []), "accounts\\[0\\]: must be a JSON object"),
    ("account balance missing", _delete("accounts.0.balance"), "accounts\\[0\\].balance: missing"),
    ("account unknown field", _set("accounts.0.nonce", 0), "accounts\\[0\\].nonce: unknown field"),
    ("account balance negative", _set("accounts.0.balance", -5),
     "accounts\\[0\\].balance: must be a non-negative integer"),
    ("account balance float", _set("accounts.0.balance", 1.5),
     "accounts\\[0\\].balance: must be a non-negative integer"),
    ("account balance 2**63", _set("accounts.1.balance", 2**63),
     "accounts\\[1\\].balance: 9223372036854775808 is not below 2\\*\\*63"),
    ("account address bad", _set("accounts.2.address", "bizra1nope"),
     "accounts\\[2\\].address: "),
    ("account twice", _set("accounts.2.address", GENESIS.accounts[0].address.hex()),
     "accounts\\[2\\].address: same address as accounts\\[0\\]"),
    ("supply overflow", _set("accounts.0.balance", str(2**63 - 1)),
     ("accounts: the total supply of balances and bonds, [0-9]+ useed, must be below "
      "2\\*\\*63")),
]


@pytest.mark.parametrize(("mutate", "message"), [(m, msg) for _, m, msg in BAD_DOCS],
                         ids=[name for name, _, _ in BAD_DOCS])
def test_bad_field_is_named(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    d = doc()
    mutate(d)
    with pytest.raises(InvalidGenesis, match="^" + message):
        parse_genesis(dump(d))


@pytest.mark.parametrize(("data", "message"), [
    (b"", "not JSON: Expecting value at line 1 column 1"),
    (b"{", "not JSON"),
    (b"\xff\xfe{}", "not UTF-8 text"),
    (b"[]", "genesis: must be a JSON object"),
    (b"null", "genesis: must be a JSON object"),
    (b'{"chain_id": "a", "chain_id": "b"}', "not acceptable JSON: key 'chain_id' appears twice"),
    (b'{"x": NaN}', "not acceptable JSON: NaN"),
    (b'{"x": -Infinity}', "not acceptable JSON: -Infinity"),
    (b"[" * 100_000 + b"]" * 100_000, "not acceptable JSON"),
    (b'{"x": 1' + b"0" * 5000 + b"}", "not acceptable JSON"),
    (b'{"x": "\\ud800"}', "genesis: |chain_id: missing"),
])
def test_bad_files(data: bytes, message: str) -> None:
    with pytest.raises(InvalidGenesis, match=message):
        parse_genesis(data)


def test_hash_refuses_lone_surrogates() -> None:
    with pytest.raises(InvalidGenesis, match="lone surrogate"):
        genesis_hash(b'{"x": "\\ud800"}')


def test_parse_refuses_non_bytes() -> None:
    with pytest.raises(InvalidGenesis, match="bytes, not str"):
        parse_genesis("{}")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Constructing a Genesis directly applies the same rules.


def test_direct_construction_is_checked() -> None:
    v = GENESIS.validators[0]
    good: dict[str, Any] = {"chain_id": "c", "genesis_time_ns": 0, "initial_height": 1,
                            "params": Params(), "validators": (v,), "accounts": ()}
    assert Genesis(**good).validators == (v,)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"validators": (GenesisValidator(v.pub_key[:31], v.operator, v.bond, "m"),)},
         "validators\\[0\\].pub_key.value: must be 32 bytes"),
        ({"validators": (GenesisValidator(v.pub_key, v.operator[:19], v.bond, "m"),)},
         "validators\\[0\\].operator: must be 20 bytes"),
        ({"validators": (GenesisValidator(v.pub_key, v.operator, True, "m"),)},
         "validators\\[0\\].bond: must be a non-negative integer"),
        ({"accounts": (GenesisAccount(v.operator, -1),)},
         "accounts\\[0\\].balance: must be a non-negative integer"),
        ({"genesis_time_ns": -1}, "genesis_time: must be from 1970"),
        ({"initial_height": 0}, "initial_height: must be an integer from 1"),
        ({"params": {}}, "params: must be a Params"),
        ({"chain_id": None}, "chain_id: must be a non-empty string"),
    ]
    for change, message in cases:
        with pytest.raises(InvalidGenesis, match="^" + message):
            Genesis(**{**good, **change})
