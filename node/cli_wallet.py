"""The client side of ``bizra-node``: keys, txs signed locally and sent to a node, and
queries of a node's state. Everything here talks to a node over JSON-RPC (``--node``,
default http://127.0.0.1:8080); keys never leave this machine.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import click

from chain.address import format_address, parse_address
from chain.crypto import PrivateKey, address_of, private_key_from_pem, private_key_to_pem
from chain.errors import BizraError
from chain.params import USEED_PER_SEED, Params
from chain.sizes import HASH_LEN, PUBLIC_KEY_LEN
from chain.transition import least_fee, sign_tx
from chain.types import (
    POI_DIMENSIONS,
    Bond,
    PoiAttest,
    PoiEndorse,
    Transfer,
    TxBody,
    Unbond,
    ValidatorRegister,
)
from node.client import DEFAULT_NODE, Client, ClientError
from node.home import Home, chmod_advice, exposed_mode, write_private

DEFAULT_HOME = Path("~/.bizra").expanduser()

node_option = click.option("--node", "node_url", default=DEFAULT_NODE, show_default=True, envvar="BIZRA_NODE",
                           help="The node's RPC address (or BIZRA_NODE).")
home_option = click.option("--home", "home_dir", type=click.Path(path_type=Path), default=DEFAULT_HOME,
                           show_default=True, envvar="BIZRA_HOME", help="The node home (or BIZRA_HOME).")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def _print(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


def parse_amount(text: str) -> int:
    """``5seed`` or ``5.5seed`` → useed; a plain integer is useed."""
    t = text.strip().lower()
    try:
        if t.endswith("useed"):
            return int(t[:-5])
        if t.endswith("seed"):
            whole, _, frac = t[:-4].partition(".")
            if len(frac) > 6:
                raise ValueError
            return int(whole or "0") * USEED_PER_SEED + int(frac.ljust(6, "0") or "0")
        return int(t)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected useed (an integer) or an amount like 12.5seed") \
            from None


# --- keys ------------------------------------------------------------------------------


def _keys_dir(home: Path) -> Path:
    return home / "keys"


@click.group("keys")
def keys() -> None:
    """Account keys kept in HOME/keys (PKCS#8 PEM files, readable by you only)."""


@keys.command("new")
@click.argument("name")
@home_option
def keys_new(name: str, home_dir: Path) -> None:
    """Make a new key NAME and print its address."""
    directory = _keys_dir(home_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = PrivateKey.generate()
    try:
        write_private(directory / f"{name}.pem", private_key_to_pem(key))
    except BizraError as exc:
        _fail(str(exc))
    click.echo(f"{name}  {format_address(address_of(key.public_key))}  {directory / f'{name}.pem'}")


@keys.command("show")
@click.argument("name")
@home_option
def keys_show(name: str, home_dir: Path) -> None:
    """Print key NAME's address and public key."""
    key = _load(_keys_dir(home_dir) / f"{name}.pem")
    _print({"name": name, "address": format_address(address_of(key.public_key)),
            "public_key": key.public_key.hex()})


@keys.command("list")
@home_option
def keys_list(home_dir: Path) -> None:
    """Print every key's name and address."""
    for path in sorted(_keys_dir(home_dir).glob("*.pem")):
        click.echo(f"{path.stem}  {format_address(address_of(_load(path).public_key))}")


def _warn_if_exposed(path: Path) -> None:
    """Warn on stderr if other users have access to the key file ``path``, saying the
    ``chmod 600`` to run; the command goes on."""
    mode = exposed_mode(path)
    if mode is not None:
        click.echo(f"warning: {chmod_advice(path, mode)}", err=True)


def _load(path: Path) -> PrivateKey:
    """The key in the PEM file ``path`` (a warning first if other users may read it);
    exits with an error if it cannot be read or is no key."""
    _warn_if_exposed(path)
    try:
        return private_key_from_pem(path.read_bytes())
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror}")
    except BizraError as exc:
        _fail(f"{path}: not a key file ({exc})")
    raise AssertionError  # unreachable: _fail exits


# --- txs -------------------------------------------------------------------------------


@click.group("tx")
def tx() -> None:
    """Sign a tx locally and send it to a node.

    The signing key is --key FILE, or the operator key of the node home --home DIR
    (operator_key.pem). The nonce comes from the node, and so does the fee unless --fee
    names one: the least the chain's parameters (its genesis) ask of the tx,
    min_fee + fee_per_byte × its size. --wait waits until the tx is in a block and
    prints its result.
    """


def _signer_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="The signing key (PEM)."),
        home_option,
        node_option,
        click.option("--fee", default=None,
                     help="The fee, in useed (or 1seed); default: the least the chain asks of the tx."),
        click.option("--wait", is_flag=True, help="Wait until the tx is in a block."),
    ]):
        fn = option(fn)
    return fn


def _send(body: TxBody, key_file: Path | None, home_dir: Path, node_url: str, fee: str | None,
          wait: bool) -> None:
    key = _load(key_file if key_file is not None else home_dir / "operator_key.pem")
    chosen_fee = None if fee is None else parse_amount(fee)
    client = Client(node_url)
    try:
        chain_id = client.call("status")["node_info"]["network"]
        sender = format_address(address_of(key.public_key))
        nonce = int(client.call("bizra_account", address=sender)["nonce"])
        if chosen_fee is None:
            params = Params.from_json(client.call("genesis")["genesis"]["app_state"]["params"])
            chosen_fee = least_fee(params, nonce, body)
        raw = sign_tx(chain_id, key, nonce, body, chosen_fee)
        method = "broadcast_tx_commit" if wait else "broadcast_tx_sync"
        result = client.call(method, tx=base64.b64encode(raw).decode())
    except ClientError as exc:
        _fail(str(exc))
    except BizraError as exc:
        _fail(f"the node's chain parameters: {exc}")
    _print(result)
    check = result.get("check_tx", result)
    if check.get("code") or (wait and result.get("tx_result", {}).get("code")):
        raise SystemExit(1)


@tx.command("transfer")
@click.argument("to")
@click.argument("amount")
@_signer_options
def tx_transfer(to: str, amount: str, **kw: Any) -> None:
    """Send AMOUNT (useed, or e.g. 2.5seed) to the address TO."""
    try:
        recipient = parse_address(to)
    except BizraError as exc:
        _fail(f"TO: {exc}")
    _send(Transfer(recipient, parse_amount(amount)), **kw)


@tx.command("register")
@click.argument("moniker")
@click.option("--consensus-key", help="The validator's consensus public key (hex); default: the home's "
                                      "validator_key.pem.")
@_signer_options
def tx_register(moniker: str, consensus_key: str | None, **kw: Any) -> None:
    """Register a validator named MONIKER, operated by the signing account."""
    if consensus_key is None:
        home = Home(kw["home_dir"])
        _warn_if_exposed(home.validator_key_file)
        try:
            key = home.validator_key()
        except BizraError as exc:
            _fail(str(exc))
        if key is None:
            _fail("no --consensus-key and no validator_key.pem in the home")
        assert key is not None
        pubkey = key.public_key
    else:
        try:
            pubkey = bytes.fromhex(consensus_key)
        except ValueError:
            _fail(f"--consensus-key: expected {2 * PUBLIC_KEY_LEN} hex digits")
    _send(ValidatorRegister(pubkey, moniker), **kw)


@tx.command("bond")
@click.argument("amount")
@_signer_options
def tx_bond(amount: str, **kw: Any) -> None:
    """Bond AMOUNT of the operator's balance to its validator."""
    _send(Bond(parse_amount(amount)), **kw)


@tx.command("unbond")
@click.argument("amount")
@_signer_options
def tx_unbond(amount: str, **kw: Any) -> None:
    """Unbond AMOUNT (back to the balance after the unbonding epochs)."""
    _send(Unbond(parse_amount(amount)), **kw)


@tx.command("attest")
@click.argument("epoch", type=int)
@click.argument("evidence_root")
@click.argument("dims")
@click.option("--penalty", type=int, default=0, show_default=True, help="Parts per million.")
@_signer_options
def tx_attest(epoch: int, evidence_root: str, dims: str, penalty: int, **kw: Any) -> None:
    """Attest impact in EPOCH: EVIDENCE_ROOT (64 hex digits) and DIMS, five scores in
    parts per million separated by commas (e.g. 900000,800000,700000,600000,500000)."""
    try:
        root = bytes.fromhex(evidence_root)
        values = tuple(int(d) for d in dims.split(","))
    except ValueError:
        _fail("EVIDENCE_ROOT must be hex and DIMS five integers separated by commas")
    if len(root) != HASH_LEN or len(values) != POI_DIMENSIONS:
        _fail(f"EVIDENCE_ROOT must be {HASH_LEN} bytes ({2 * HASH_LEN} hex digits) and DIMS five integers")
    _send(PoiAttest(epoch, root, (values[0], values[1], values[2], values[3], values[4]), penalty), **kw)


@tx.command("endorse")
@click.argument("attestation_id")
@click.argument("score", type=int)
@_signer_options
def tx_endorse(attestation_id: str, score: int, **kw: Any) -> None:
    """Endorse ATTESTATION_ID (hex) with a validation SCORE in parts per million."""
    try:
        att = bytes.fromhex(attestation_id)
    except ValueError:
        _fail(f"ATTESTATION_ID: expected {2 * HASH_LEN} hex digits")
    _send(PoiEndorse(att, score), **kw)


# --- queries ---------------------------------------------------------------------------


@click.group("query")
def query() -> None:
    """Read the chain's state from a node."""


def _query(node_url: str, method: str, **params: Any) -> None:
    try:
        _print(Client(node_url).call(method, **params))
    except ClientError as exc:
        _fail(str(exc))


@query.command("account")
@click.argument("address")
@node_option
def query_account(address: str, node_url: str) -> None:
    """An account's balance and nonce."""
    _query(node_url, "bizra_account", address=address)


@query.command("validator")
@click.argument("operator")
@node_option
def query_validator(operator: str, node_url: str) -> None:
    """The validator operated by OPERATOR (an address)."""
    _query(node_url, "bizra_validator", operator=operator)


@query.command("attestation")
@click.argument("attestation_id")
@node_option
def query_attestation(attestation_id: str, node_url: str) -> None:
    """An attestation's status, score and endorsements."""
    _query(node_url, "bizra_attestation", id=attestation_id)


@query.command("block")
@click.argument("height", required=False)
@node_option
def query_block(height: str | None, node_url: str) -> None:
    """Block HEIGHT (default: the latest)."""
    _query(node_url, "block", **({"height": height} if height else {}))


@query.command("tx")
@click.argument("hash_")
@node_option
def query_tx(hash_: str, node_url: str) -> None:
    """A committed tx by its hash."""
    _query(node_url, "tx", hash=hash_)

