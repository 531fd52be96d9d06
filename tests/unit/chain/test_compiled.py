"""The build the tests run against: the modules the build compiles are loaded compiled."""

from __future__ import annotations

import os

import pytest

from chain.compiled import COMPILED_MODULES, is_extension_file, module_file


def _required() -> bool:
    return (os.environ.get("CI", "").lower() not in ("", "0", "false")
            or os.environ.get("BIZRA_REQUIRE_COMPILED") == "1")


def test_hot_modules_are_compiled() -> None:
    if not _required():
        pytest.skip("set CI or BIZRA_REQUIRE_COMPILED=1 to require the compiled build")
    loaded = {name: module_file(name) for name in COMPILED_MODULES}
    plain = {name: path for name, path in loaded.items() if not is_extension_file(path)}
    assert not plain, f"loaded without compilation: {plain}"
