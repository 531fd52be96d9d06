"""The ``bizra-node`` command line."""

from __future__ import annotations

import json
import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version

import click

from chain.compiled import compiled_status, module_file

DISTRIBUTION = "bizra-node"


def package_version() -> str:
    """The installed version of the distribution (``unknown`` in an uninstalled tree)."""
    try:
        return distribution_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """BIZRA NODE-0, a node of the BIZRA chain.

    BIZRA is a proof-of-stake chain with Tendermint-style BFT consensus, SEED
    transfers, a validator lifecycle and Proof of Impact.

    This release holds the ledger core: the rules every node applies (encoding,
    signatures, merkle trees, the state root, the state transition, genesis). The
    node itself (storage, networking, consensus, JSON-RPC) does not run yet.

    Commands available today:

    \b
      version   the installed version, and whether each hot module runs
                compiled (mypyc) or interpreted
    """


@main.command("version")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--require-compiled",
    is_flag=True,
    help="Exit with status 1 when any hot module runs interpreted (for CI and images).",
)
def version_command(as_json: bool, require_compiled: bool) -> None:
    """Print the version and, for each hot module, whether its compiled build is loaded.

    A module shows "interpreted" when the package was installed with BIZRA_NO_MYPYC=1,
    or when its compiled build is not the one Python loaded. The results are the same
    either way; the compiled build is faster.
    """
    status = compiled_status()
    if as_json:
        document = {
            "version": package_version(),
            "python": platform.python_version(),
            "modules": {
                name: {"compiled": compiled, "file": module_file(name)}
                for name, compiled in status.items()
            },
        }
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(f"{DISTRIBUTION} {package_version()}")
        width = max(len(name) for name in status)
        for name, compiled in status.items():
            how = f"compiled ({module_file(name)})" if compiled else "interpreted (pure Python)"
            click.echo(f"{name:<{width}}  {how}")
    interpreted = [name for name, compiled in status.items() if not compiled]
    if require_compiled and interpreted:
        click.echo(f"error: running interpreted: {', '.join(interpreted)}", err=True)
        raise SystemExit(1)
