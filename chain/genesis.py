"""The genesis file (§10): parsing, validation, its hash, and devnet genesis files.

The file is JSON::

    {"chain_id": "bizra-testnet-001",
     "genesis_time": "2026-11-24T11:39:02.123456789Z",
     "initial_height": "1",
     "params": {...every param of chain.params, by name...},
     "validators": [{"pub_key": {"type": "tendermint/PubKeyEd25519", "value": "<base64>"},
                     "operator": "bizra1...", "bond": "1000000000", "moniker": "node-0"}],
     "accounts": [{"address": "bizra1...", "balance": "1000000000000"}]}

Integers (``initial_height``, ``bond``, ``balance``) may be JSON numbers or decimal
strings, as CometBFT writes int64; :meth:`Genesis.to_json` writes strings, which no
JSON reader rounds. Addresses may be bech32 or hex; they are written as bech32.

Every refusal raises :class:`~chain.errors.InvalidGenesis` whose message starts with
the JSON path of the bad field, e.g. ``validators[2].pub_key.value: not 32 bytes of
base64``. The genesis hash is SHA-256 of the file's canonical JSON (sorted keys, no
spaces, UTF-8), so it does not depend on formatting or key order.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from chain.address import format_address, parse_address
from chain.crypto import PrivateKey, address_of
from chain.errors import DecodeError, InvalidAddress, InvalidGenesis
from chain.params import USEED_PER_SEED, Params
from chain.sizes import ADDRESS_LEN, MAX_CHAIN_ID_BYTES, MAX_MONIKER_BYTES, PUBLIC_KEY_LEN
from chain.timefmt import format_rfc3339_ns, parse_rfc3339_ns

PUB_KEY_TYPE = "tendermint/PubKeyEd25519"
AMOUNT_LIMIT = 2**63
"""Amounts, heights, times and the total supply stay below this (Go's int64)."""

OPERATOR_KEY_DOMAIN = b"bizra/operator/v1"
DEVNET_BALANCE = 1_000_000 * USEED_PER_SEED
"""What :func:`make_devnet_genesis` gives each operator account: 1,000,000 SEED."""

_TOP_LEVEL = ("chain_id", "genesis_time", "initial_height", "params", "validators", "accounts")
_VALIDATOR_FIELDS = ("pub_key", "operator", "bond", "moniker")
_PUB_KEY_FIELDS = ("type", "value")
_ACCOUNT_FIELDS = ("address", "balance")


@dataclass(frozen=True, slots=True)
class GenesisValidator:
    """A validator the chain starts with: its consensus key, operator account, bond
    (useed) and name. Checked as part of its :class:`Genesis`."""

    pub_key: bytes
    operator: bytes
    bond: int
    moniker: str

    def to_json(self) -> dict[str, Any]:
        return {
            "pub_key": {"type": PUB_KEY_TYPE, "value": base64.b64encode(self.pub_key).decode()},
            "operator": format_address(self.operator),
            "bond": str(self.bond),
            "moniker": self.moniker,
        }


@dataclass(frozen=True, slots=True)
class GenesisAccount:
    """An account the chain starts with and its balance (useed)."""

    address: bytes
    balance: int

    def to_json(self) -> dict[str, Any]:
        return {"address": format_address(self.address), "balance": str(self.balance)}


@dataclass(frozen=True, slots=True)
class Genesis:
    """A validated genesis: constructing one with a bad field raises InvalidGenesis.

    The rules: a chain id of 1 to 50 visible ASCII characters (no spaces or control
    characters); a genesis time from 1970 to 2262 (int64 nanoseconds); an initial height
    of at least 1; at least one validator; no two validators with one consensus key or
    one operator, no two accounts with one address; every bond at least
    ``params.min_bond``; monikers of at most 64 UTF-8 bytes; every amount, and the total
    supply of balances and bonds, below 2**63 useed.
    """

    chain_id: str
    genesis_time_ns: int
    initial_height: int
    params: Params
    validators: tuple[GenesisValidator, ...]
    accounts: tuple[GenesisAccount, ...]

    def __post_init__(self) -> None:
        _check_chain_id(self.chain_id)
        if type(self.genesis_time_ns) is not int or not 0 <= self.genesis_time_ns < AMOUNT_LIMIT:
            _fail("genesis_time", "must be from 1970-01-01T00:00:00Z to "
                  f"{format_rfc3339_ns(AMOUNT_LIMIT - 1)} (int64 nanoseconds)")
        if type(self.initial_height) is not int or not 1 <= self.initial_height < AMOUNT_LIMIT:
            _fail("initial_height", "must be an integer from 1 to 2**63 - 1")
        if not isinstance(self.params, Params):
            _fail("params", "must be a Params")
        supply = _check_validators(self.validators, self.params) + _check_accounts(self.accounts)
        if supply >= AMOUNT_LIMIT:
            _fail("accounts", f"the total supply of balances and bonds, {supply} useed, "
                  "must be below 2**63")

    def to_json(self) -> dict[str, Any]:
        """The genesis file's JSON object, with every field written in its canonical form."""
        return {
            "chain_id": self.chain_id,
            "genesis_time": format_rfc3339_ns(self.genesis_time_ns),
            "initial_height": str(self.initial_height),
            "params": self.params.to_json(),
            "validators": [v.to_json() for v in self.validators],
            "accounts": [a.to_json() for a in self.accounts],
        }

    def canonical_json(self) -> bytes:
        """:meth:`to_json` as canonical JSON bytes; written as the genesis file, its
        :func:`genesis_hash` is their SHA-256."""
        return _canonical(self.to_json())


def parse_genesis(data: bytes) -> Genesis:
    """The validated genesis of a genesis file's bytes (UTF-8 JSON).

    Refuses JSON with duplicate keys or NaN/Infinity, unknown fields at any level, and
    every rule of :class:`Genesis`; raises InvalidGenesis naming the first bad field.
    """
    doc = _load_json(data)
    fields = _fields(doc, "", _TOP_LEVEL)
    chain_id = _string(fields["chain_id"], "chain_id")
    time_text = _string(fields["genesis_time"], "genesis_time")
    try:
        genesis_time_ns = parse_rfc3339_ns(time_text)
    except DecodeError as exc:
        _fail("genesis_time", str(exc))
    return Genesis(
        chain_id=chain_id,
        genesis_time_ns=genesis_time_ns,
        initial_height=_integer(fields["initial_height"], "initial_height"),
        params=Params.from_json(fields["params"]),
        validators=tuple(_validator(item, f"validators[{i}]")
                         for i, item in enumerate(_list(fields["validators"], "validators"))),
        accounts=tuple(_account(item, f"accounts[{i}]")
                       for i, item in enumerate(_list(fields["accounts"], "accounts"))),
    )


def genesis_hash(data: bytes) -> bytes:
    """SHA-256 of the canonical JSON of a genesis file's JSON document (§10).

    Only reads the JSON (InvalidGenesis if it is not strict JSON); validating the
    genesis is :func:`parse_genesis`'s job.
    """
    return hashlib.sha256(_canonical(_load_json(data))).digest()


def operator_key_for(consensus_key: PrivateKey) -> PrivateKey:
    """The operator key :func:`make_devnet_genesis` pairs with a consensus key.

    Its seed is ``SHA-256(b"bizra/operator/v1" || consensus seed)``: a separate key, so
    the operator account (which holds funds and signs txs) and the consensus key (which
    signs votes) never share a signature, yet a devnet needs to keep only one seed per
    validator.
    """
    return PrivateKey.from_seed(hashlib.sha256(OPERATOR_KEY_DOMAIN + consensus_key.seed).digest())


def make_devnet_genesis(chain_id: str, validator_keys: Sequence[PrivateKey], genesis_time_ns: int,
                        *, params: Params | None = None, bond: int | None = None,
                        balance: int = DEVNET_BALANCE) -> Genesis:
    """A genesis for a local devnet with one validator per key, in the given order.

    Validator ``i`` is named ``validator-<i>``, bonds ``bond`` (default
    ``params.min_bond``) and is operated by the account of
    ``operator_key_for(validator_keys[i])``, which is funded with ``balance``. Raises
    InvalidGenesis if the result breaks a rule (e.g. a key given twice).
    """
    chosen = params if params is not None else Params()
    stake = chosen.min_bond if bond is None else bond
    operators = [address_of(operator_key_for(key).public_key) for key in validator_keys]
    return Genesis(
        chain_id=chain_id,
        genesis_time_ns=genesis_time_ns,
        initial_height=1,
        params=chosen,
        validators=tuple(GenesisValidator(key.public_key, operator, stake, f"validator-{i}")
                         for i, (key, operator) in enumerate(zip(validator_keys, operators,
                                                                 strict=True))),
        accounts=tuple(GenesisAccount(operator, balance) for operator in operators),
    )


# ---------------------------------------------------------------------------------------
# Reading the JSON.


def _fail(path: str, problem: str) -> NoReturn:
    raise InvalidGenesis(f"{path}: {problem}")


def _canonical(doc: Any) -> bytes:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidGenesis("not acceptable JSON: a string holds a lone surrogate "
                             "(\\ud800-\\udfff escape), which is not Unicode") from None


def _load_json(data: bytes) -> Any:
    if not isinstance(data, bytes):
        raise InvalidGenesis(f"a genesis file is bytes, not {type(data).__name__}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidGenesis(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        return json.loads(text, object_pairs_hook=_object_without_duplicates,
                          parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidGenesis(f"not JSON: {exc.msg} at line {exc.lineno} "
                             f"column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidGenesis(f"not acceptable JSON: {exc}") from None


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InvalidGenesis(f"not acceptable JSON: key {key!r} appears twice in an object")
        obj[key] = value
    return obj


def _refuse_constant(name: str) -> NoReturn:
    raise InvalidGenesis(f"not acceptable JSON: {name} is not a JSON number")


def _fields(value: object, path: str, names: tuple[str, ...]) -> dict[str, Any]:
    """``value`` as an object with exactly the fields ``names``."""
    if not isinstance(value, dict):
        _fail(path or "genesis", "must be a JSON object")
    prefix = f"{path}." if path else ""
    for name in names:
        if name not in value:
            _fail(prefix + name, "missing")
    for name in value:
        if name not in names:
            _fail(prefix + name, "unknown field")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        _fail(path, "must be a JSON array")
    return value


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        _fail(path, "must be a string")
    return value


def _integer(value: object, path: str) -> int:
    """A non-negative integer written as a JSON number or a decimal string."""
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        try:
            return int(value)
        except ValueError:  # more digits than Python converts
            pass
    _fail(path, "must be a non-negative integer (a JSON number or a decimal string)")


def _validator(value: object, path: str) -> GenesisValidator:
    fields = _fields(value, path, _VALIDATOR_FIELDS)
    key = _fields(fields["pub_key"], f"{path}.pub_key", _PUB_KEY_FIELDS)
    if key["type"] != PUB_KEY_TYPE:
        _fail(f"{path}.pub_key.type", f"must be {PUB_KEY_TYPE!r}")
    return GenesisValidator(
        pub_key=_pub_key(key["value"], f"{path}.pub_key.value"),
        operator=_address(fields["operator"], f"{path}.operator"),
        bond=_integer(fields["bond"], f"{path}.bond"),
        moniker=_string(fields["moniker"], f"{path}.moniker"),
    )


def _account(value: object, path: str) -> GenesisAccount:
    fields = _fields(value, path, _ACCOUNT_FIELDS)
    return GenesisAccount(
        address=_address(fields["address"], f"{path}.address"),
        balance=_integer(fields["balance"], f"{path}.balance"),
    )


def _pub_key(value: object, path: str) -> bytes:
    text = _string(value, path)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        _fail(path, f"not {PUBLIC_KEY_LEN} bytes of base64")
    if len(raw) != PUBLIC_KEY_LEN:
        _fail(path, f"not {PUBLIC_KEY_LEN} bytes of base64")
    # Padding bits must be zero, so that one key has one spelling.
    if base64.b64encode(raw).decode() != text:
        _fail(path, "not canonical base64")
    return raw


def _address(value: object, path: str) -> bytes:
    text = _string(value, path)
    try:
        return parse_address(text)
    except InvalidAddress as exc:
        _fail(path, str(exc))


def _check_chain_id(chain_id: object) -> None:
    if type(chain_id) is not str or not chain_id:
        _fail("chain_id", "must be a non-empty string")
    if len(chain_id) > MAX_CHAIN_ID_BYTES:
        _fail("chain_id", f"{len(chain_id)} characters, at most {MAX_CHAIN_ID_BYTES}")
    for index, ch in enumerate(chain_id):
        if not "!" <= ch <= "~":
            _fail("chain_id", f"character {ch!r} at index {index} is not visible ASCII")


def _check_validators(validators: tuple[GenesisValidator, ...], params: Params) -> int:
    """Check the validators; their total bond."""
    if not validators:
        _fail("validators", "at least one validator is needed")
    total = 0
    pub_keys: dict[bytes, int] = {}
    operators: dict[bytes, int] = {}
    for i, v in enumerate(validators):
        path = f"validators[{i}]"
        if type(v.pub_key) is not bytes or len(v.pub_key) != PUBLIC_KEY_LEN:
            _fail(f"{path}.pub_key.value", f"must be {PUBLIC_KEY_LEN} bytes")
        _check_address(v.operator, f"{path}.operator")
        _check_amount(v.bond, f"{path}.bond")
        if v.bond < params.min_bond:
            _fail(f"{path}.bond", f"{v.bond} is below params.min_bond {params.min_bond}")
        _check_moniker(v.moniker, f"{path}.moniker")
        if v.pub_key in pub_keys:
            _fail(f"{path}.pub_key", f"same key as validators[{pub_keys[v.pub_key]}]")
        if v.operator in operators:
            _fail(f"{path}.operator", f"same operator as validators[{operators[v.operator]}]")
        pub_keys[v.pub_key] = i
        operators[v.operator] = i
        total += v.bond
    return total


def _check_accounts(accounts: tuple[GenesisAccount, ...]) -> int:
    """Check the accounts; their total balance."""
    total = 0
    addresses: dict[bytes, int] = {}
    for i, account in enumerate(accounts):
        path = f"accounts[{i}]"
        _check_address(account.address, f"{path}.address")
        _check_amount(account.balance, f"{path}.balance")
        if account.address in addresses:
            _fail(f"{path}.address", f"same address as accounts[{addresses[account.address]}]")
        addresses[account.address] = i
        total += account.balance
    return total


def _check_moniker(moniker: object, path: str) -> None:
    if type(moniker) is not str:
        _fail(path, "must be a string")
    try:
        size = len(moniker.encode("utf-8"))
    except UnicodeEncodeError:
        _fail(path, "not valid Unicode (it holds a lone surrogate)")
    if size > MAX_MONIKER_BYTES:
        _fail(path, f"{size} bytes of UTF-8, at most {MAX_MONIKER_BYTES}")


def _check_address(address: object, path: str) -> None:
    if type(address) is not bytes or len(address) != ADDRESS_LEN:
        _fail(path, f"must be {ADDRESS_LEN} bytes")


def _check_amount(amount: object, path: str) -> None:
    if type(amount) is not int or amount < 0:
        _fail(path, "must be a non-negative integer")
    if amount >= AMOUNT_LIMIT:
        _fail(path, f"{amount} is not below 2**63")
