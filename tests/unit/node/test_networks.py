"""The public testnet as shipped: its genesis loads, validates and hashes to the pin in
the code; a changed byte makes ``start`` refuse it; and the genesis tooling that makes
such a network."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from chain.genesis import genesis_hash, parse_genesis
from node import cli
from node.networks import NETWORKS, UnknownNetwork, network

REPO = Path(__file__).resolve().parents[3]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_shipped_testnet_genesis_is_valid_and_pinned() -> None:
    testnet = network("bizra-testnet-001")
    data = testnet.genesis_json()
    genesis = parse_genesis(data)
    assert genesis.chain_id == "bizra-testnet-001"
    assert len(genesis.validators) == 4 and genesis.params.block_time_ms == 6_000
    assert genesis_hash(data) == testnet.genesis_hash
    assert (REPO / "genesis" / "bizra-testnet-001.json").read_bytes() == data  # the repo's is the package's
    assert all(b.startswith("/dns4/") and "/p2p/12D3KooW" in b for b in testnet.bootnodes)
    with pytest.raises(UnknownNetwork, match="known: bizra-testnet-001"):
        network("bizra-mainnet")
    assert set(NETWORKS) == {"bizra-testnet-001"}


def test_init_writes_a_home_for_the_testnet_and_start_refuses_a_changed_genesis(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out, _ = invoke("init", "--home", str(home), "--network", "bizra-testnet-001")
    assert code == 0 and "node home ready" in out
    assert (home / "genesis.json").read_bytes() == network("bizra-testnet-001").genesis_json()
    assert 'network = "bizra-testnet-001"' in (home / "config.toml").read_text()
    assert not (home / "validator_key.pem").exists()  # a full node unless asked

    data = bytearray((home / "genesis.json").read_bytes())
    data[data.index(b"testnet-validator-0") + 17] ^= 1  # one byte
    (home / "genesis.json").write_bytes(bytes(data))
    code, _, err = invoke("start", "--home", str(home))
    assert code == 1
    assert f"{home / 'genesis.json'} is not the genesis of bizra-testnet-001" in err
    assert "The file was changed" in err


def test_a_new_network_from_its_validators_keys(tmp_path: Path) -> None:
    entries = []
    for i in range(3):
        code, out, err = invoke("genesis", "validator", "--home", str(tmp_path / f"v{i}"),
                                "--moniker", f"v-{i}", "--bond", "2000seed")
        assert code == 0, err
        entries.append(out.strip())
        assert (tmp_path / f"v{i}" / "validator_key.pem").exists()
    pubkey, operator, bond, moniker = entries[0].split(",")
    assert len(pubkey) == 64 and operator.startswith("bizra1") and bond == "2000000000" and moniker == "v-0"
    out_file = tmp_path / "genesis.json"
    args = ["genesis", "create", "--chain-id", "bizra-newnet-1", "--genesis-time", "2027-01-01T00:00:00Z",
            "--param", "block_time_ms=2000", "--account", f"{operator},5seed", "--out", str(out_file)]
    for entry in entries:
        args += ["--validator", entry]
    code, out, err = invoke(*args)
    assert code == 0, err
    data = out_file.read_bytes()
    assert genesis_hash(data).hex() in out
    genesis = parse_genesis(data)
    assert [v.moniker for v in genesis.validators] == ["v-0", "v-1", "v-2"]
    assert genesis.params.block_time_ms == 2_000 and genesis.accounts[0].balance == 5_000_000
    assert invoke("genesis", "hash", str(out_file))[1].split()[0] == genesis_hash(data).hex()

    code, _, err = invoke(*args)
    assert code == 1 and "exists already" in err
    bad = ["genesis", "create", "--chain-id", "x", "--genesis-time", "2027-01-01T00:00:00Z",
           "--out", str(tmp_path / "bad.json")]
    assert "expected PUBKEY,OPERATOR,BOND,MONIKER" in invoke(*bad, "--validator", "nope")[2]
    low = entries[0].replace("2000000000", "5")
    code, _, err = invoke(*bad, "--validator", low)
    assert code == 1 and "min_bond" in err
    typo = invoke(*args[:-2], "--param", "blok_time=1", "--out", str(tmp_path / "c"))
    assert typo[0] == 1 and "params.blok_time: unknown parameter" in typo[2]
