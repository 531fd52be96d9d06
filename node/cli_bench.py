"""``bizra-node bench``: measuring this machine's node against its floor."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("bench")
def bench() -> None:
    """Measure the node on this machine (needs: pip install 'bizra-node[bench]')."""


@bench.command("load")
@click.option("--validators", default=4, show_default=True, help="Validators of the devnet made for the run.")
@click.option("--rate", default=2_000.0, show_default=True, help="Txs a second sent, over all nodes.")
@click.option("--seconds", default=60.0, show_default=True, help="How long txs are sent.")
@click.option("--accounts", default=2_000, show_default=True, help="Funded accounts the txs come from.")
@click.option("--clients", default=4, show_default=True,
              help="Clients sending to each node, each with its own accounts and one request in flight.")
@click.option("--block-time-ms", default=6_000, show_default=True, help="The devnet's block time.")
@click.option("--drain", default=300.0, show_default=True,
              help="After the last tx, wait this long at most for the accepted ones to be committed "
                   "(less if no block comes for 60 s).")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
              help="Make the devnet in this directory and keep it (homes, node logs).")
def load_command(validators: int, rate: float, seconds: float, accounts: int, clients: int,
                 block_time_ms: int, drain: float, keep: Path | None) -> None:
    """Send pre-signed transfers to a devnet of node processes on this machine and
    report committed tx/s, txs lost, submit-to-commit latency, block intervals, and CPU
    and RSS per node, beside the floor (all cores' Ed25519 verifications a second
    divided by the nodes). The last line is one JSON object with every figure.

    \b
    Example:
      bizra-node bench load --rate 1000 --seconds 60
    """
    try:
        from node import loadgen
    except ImportError as exc:
        click.echo(f"error: {exc.name} is missing; install the bench extra: pip install 'bizra-node[bench]'",
                   err=True)
        raise SystemExit(1) from None
    loadgen.run(loadgen.Options(validators=validators, rate=rate, seconds=seconds, accounts=accounts,
                                clients=clients, block_time_ms=block_time_ms, drain=drain, keep=keep))
