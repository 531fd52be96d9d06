"""Which way the imports point (docs/architecture.md): ``chain`` imports no other package
of the project; ``consensus``, ``storage`` and ``p2p`` import ``chain`` only; nothing
imports ``node``; and no circle among ``node``'s modules. Every import counts, those
under ``TYPE_CHECKING`` and inside functions too. The sources are read, not imported."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("chain", "consensus", "storage", "p2p", "node")
ALLOWED = {
    "chain": {"chain"},
    "consensus": {"chain", "consensus"},
    "storage": {"chain", "storage"},
    "p2p": {"chain", "p2p"},
    "node": set(PACKAGES),
}


def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imports(name: str, source: str, *, is_package: bool = False) -> Iterator[str]:
    """The project's modules that module ``name`` (of text ``source``) imports: ``from a
    import b`` names the module ``a.b`` when there is one, else ``a``."""
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                yield target


def graph() -> dict[str, set[str]]:
    return {name: set(imports(name, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py"))
            for name, path in MODULES.items()}


def test_the_packages_import_only_downward() -> None:
    wrong = sorted(f"{name} imports {target}"
                   for name, targets in graph().items() for target in targets
                   if target.split(".")[0] not in ALLOWED[name.split(".")[0]])
    assert not wrong


def test_no_import_circle_among_node_modules() -> None:
    edges = {name: {t for t in targets if t.startswith("node.") and t != name}
             for name, targets in graph().items() if name.startswith("node.")}
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(edges.get(name, ())):
            if state.get(target) == 1:
                circles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert not circles, "\n".join(" → ".join(c) for c in circles)


def test_the_checker_sees_every_kind_of_import() -> None:
    source = ("from typing import TYPE_CHECKING\n"
              "import chain.types\n"
              "from . import mempool\n"
              "from .rpc import methods as m\n"
              "if TYPE_CHECKING:\n"
              "    from node.daemon import Node\n"
              "def later() -> None:\n"
              "    from consensus.driver import Driver\n")
    assert set(imports("node.metrics", source)) == {
        "chain.types", "node.mempool", "node.rpc.methods", "node.daemon", "consensus.driver"}
