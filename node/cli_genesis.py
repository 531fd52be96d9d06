"""``bizra-node genesis``: launching a new network without editing JSON by hand.

1. Each validator runs ``genesis validator --home DIR --moniker NAME --bond 2000seed``:
   it makes the validator's consensus key (and operator key) in its home and prints
   its genesis entry, which it sends to whoever assembles the genesis.
2. That one runs ``genesis create --chain-id ID --genesis-time T --validator ENTRY ...
   --account ADDRESS,BALANCE ... --out genesis.json``, which checks every rule and
   prints the genesis hash.
3. Each validator runs ``bizra-node init --home DIR --genesis genesis.json`` and
   ``bizra-node start --home DIR --bootnode ...``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click

from chain.address import format_address, parse_address
from chain.crypto import PrivateKey, address_of, private_key_from_pem, private_key_to_pem
from chain.errors import BizraError
from chain.genesis import Genesis, GenesisAccount, GenesisValidator, genesis_hash, parse_genesis
from chain.params import Params
from chain.sizes import MAX_MONIKER_BYTES, PUBLIC_KEY_LEN
from chain.timefmt import parse_rfc3339_ns
from node.cli_wallet import parse_amount
from node.home import Home, write_private


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


@click.group("genesis")
def genesis() -> None:
    """Make and check genesis files for a new network (see: genesis create --help)."""


@genesis.command("validator")
@click.option("--home", "home_dir", type=click.Path(path_type=Path), required=True,
              help="The validator's node home; its keys are made there if missing.")
@click.option("--moniker", required=True, help=f"The validator's name (at most {MAX_MONIKER_BYTES} bytes).")
@click.option("--bond", default="1000seed", show_default=True,
              help="Its bond at genesis (useed, or e.g. 2000seed).")
def genesis_validator(home_dir: Path, moniker: str, bond: str) -> None:
    """Make this validator's keys (if missing) and print its genesis entry:
    PUBKEY,OPERATOR,BOND,MONIKER, for genesis create --validator."""
    home = Home(home_dir)
    home_dir.mkdir(parents=True, exist_ok=True)
    try:
        if not home.validator_key_file.exists():
            write_private(home.validator_key_file, private_key_to_pem(PrivateKey.generate()))
        operator_file = home_dir / "operator_key.pem"
        if not operator_file.exists():
            write_private(operator_file, private_key_to_pem(PrivateKey.generate()))
        key = private_key_from_pem(home.validator_key_file.read_bytes())
        operator = private_key_from_pem(operator_file.read_bytes())
    except BizraError as exc:
        _fail(str(exc))
    click.echo(f"{key.public_key.hex()},{format_address(address_of(operator.public_key))},"
               f"{parse_amount(bond)},{moniker}")


def _validator(entry: str) -> GenesisValidator:
    parts = entry.split(",", 3)
    if len(parts) != 4:
        raise click.BadParameter(f"{entry!r}: expected PUBKEY,OPERATOR,BOND,MONIKER")
    pubkey_text, operator, bond, moniker = parts
    try:
        hex_form = len(pubkey_text) == 2 * PUBLIC_KEY_LEN
        pubkey = bytes.fromhex(pubkey_text) if hex_form else base64.b64decode(pubkey_text)
        return GenesisValidator(pubkey, parse_address(operator), parse_amount(bond), moniker)
    except (ValueError, BizraError) as exc:
        raise click.BadParameter(f"{entry!r}: {exc}") from None


def _account(entry: str) -> GenesisAccount:
    address, _, balance = entry.partition(",")
    try:
        return GenesisAccount(parse_address(address), parse_amount(balance))
    except (ValueError, BizraError) as exc:
        raise click.BadParameter(f"{entry!r}: {exc} (expected ADDRESS,BALANCE)") from None


@genesis.command("create")
@click.option("--chain-id", required=True)
@click.option("--genesis-time", required=True,
              help="RFC 3339, e.g. 2026-12-01T00:00:00Z: when block 1 is due.")
@click.option("--validator", "validators", multiple=True, required=True,
              help="PUBKEY,OPERATOR,BOND,MONIKER as genesis validator prints it (repeatable).")
@click.option("--account", "accounts", multiple=True, help="ADDRESS,BALANCE (repeatable).")
@click.option("--param", "params", multiple=True,
              help="NAME=VALUE over the defaults, e.g. block_time_ms=6000 (repeatable).")
@click.option("--initial-height", type=click.IntRange(1), default=1, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def genesis_create(chain_id: str, genesis_time: str, validators: tuple[str, ...], accounts: tuple[str, ...],
                   params: tuple[str, ...], initial_height: int, out: Path) -> None:
    """Write a genesis file for a new network and print its hash."""
    overrides: dict[str, object] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep:
            _fail(f"--param {item!r}: expected NAME=VALUE")
        try:
            overrides[name] = json.loads(value)
        except ValueError:
            _fail(f"--param {item!r}: the value must be a number or JSON")
    try:
        chosen = Params.from_json({**Params().to_json(), **overrides})
        document = Genesis(chain_id, parse_rfc3339_ns(genesis_time), initial_height, chosen,
                           tuple(_validator(v) for v in validators), tuple(_account(a) for a in accounts))
    except (BizraError, ValueError) as exc:
        _fail(str(exc))
    if out.exists():
        _fail(f"{out} exists already; it is never overwritten")
    data = json.dumps(document.to_json(), indent=2).encode() + b"\n"
    out.write_bytes(data)
    click.echo(f"{out}: chain {chain_id}, {len(validators)} validators, {len(accounts)} accounts; "
               f"genesis hash {genesis_hash(data).hex()}")


@genesis.command("hash")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def genesis_hash_command(file: Path) -> None:
    """Check FILE against every rule of a genesis and print its hash."""
    data = file.read_bytes()
    try:
        parsed = parse_genesis(data)
    except BizraError as exc:
        _fail(f"{file}: {exc}")
    click.echo(f"{genesis_hash(data).hex()}  {file} (chain {parsed.chain_id}, "
               f"{len(parsed.validators)} validators)")
