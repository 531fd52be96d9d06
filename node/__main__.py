"""``python -m node``: the ``bizra-node`` command, where the console script is not on PATH."""

from node.cli import main

main()
