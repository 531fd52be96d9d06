"""The comparison of a node's RPC results with CometBFT's documented ones
(``tests/support/shapekit.py``) finds each kind of difference, lets through only what a
rule allows at its path, and the documented examples themselves have the formats the
comparison asks of the node."""

from __future__ import annotations

from typing import Any

import pytest

from shapekit import FIXTURES, Rule, compare, fixture, format_problem, paths

SIGNATURE = "DBchvucTzAUEJnGYpNvMdqLhBAHG4Px8BsOBB3J3mAFCLGeuG7uJqy+nVngKzZdPhPi8RhmE/xcw/M9DOJjEDg=="
DOC: dict[str, Any] = {
    "height": "12",
    "hash": "112BC173FD838FB68EB43476816CD7B4C6661B6884A9E357B417EE957E1CF8F7",
    "round": 0,
    "canonical": True,
    "time": "2019-04-22T17:01:51.701356223Z",
    "signatures": [{"validator_address": "000001E443FD237E4B616E2FA69DF4EE3D49A94F",
                    "signature": SIGNATURE}],
    "proof": None,
}


def answer(**changes: Any) -> dict[str, Any]:
    changed = {k: v for k, v in DOC.items()}
    changed.update(changes)
    return changed


def problems(actual: Any, rules: dict[str, Rule] | None = None, expected: Any = None) -> list[str]:
    return compare(DOC if expected is None else expected, actual, rules).problems


def test_the_same_result_passes_and_keys_the_document_lacks_are_extras_not_problems() -> None:
    outcome = compare(DOC, answer(bizra_extra="1", signatures=[{**DOC["signatures"][0], "more": 1}]))
    assert outcome.problems == []
    assert outcome.extras == ["signatures[].more", "bizra_extra"]


@pytest.mark.parametrize(("actual", "problem"), [
    ({k: v for k, v in DOC.items() if k != "hash"}, "hash: missing"),
    (answer(height=12), "height: number where CometBFT has string"),
    (answer(round="0"), "round: string where CometBFT has number"),
    (answer(round=False), "round: bool where CometBFT has number"),
    (answer(round=0.5), "round: 0.5 where CometBFT has an integer"),
    (answer(canonical=1), "canonical: number where CometBFT has bool"),
    (answer(signatures={}), "signatures: object where CometBFT has array"),
    (answer(signatures=[]), "signatures: empty where CometBFT has items"),
    (answer(proof={}), "proof: object where CometBFT has null"),
    (answer(signatures=[DOC["signatures"][0], {"signature": None}]),
     "signatures[].validator_address: missing"),
    (answer(signatures=[DOC["signatures"][0], {**DOC["signatures"][0], "signature": None}]),
     "signatures[].signature: null where CometBFT has string"),
])
def test_a_missing_key_or_another_json_type_is_a_problem(actual: dict[str, Any], problem: str) -> None:
    assert problem in problems(actual)


@pytest.mark.parametrize(("change", "problem"), [
    ({"height": "12a"}, "height: '12a' is not int"),
    ({"height": "012"}, "height: '012' is not int"),
    ({"height": ""}, "height: '' is not int"),
    ({"hash": DOC["hash"].lower()}, "is not HEX"),
    ({"hash": "ABC"}, "hash: 'ABC' is not HEX"),
    ({"time": "2019-04-22T17:01:51.7013562Z0"}, "is not time"),
    ({"time": "2019-04-22T17:01:51.700Z"}, "is not time"),  # Go trims the fraction's zeros
    ({"time": "2019-04-22 17:01:51Z"}, "is not time"),
    ({"signatures": [{**DOC["signatures"][0], "signature": "not base64!"}]}, "is not base64"),
    ({"signatures": [{**DOC["signatures"][0], "signature": "QUJD"[:3]}]}, "is not base64"),
])
def test_a_string_not_in_the_format_of_its_go_type_is_a_problem(change: dict[str, Any], problem: str) -> None:
    found = problems(answer(**change))
    assert len(found) == 1 and problem in found[0], found


def test_formats() -> None:
    assert format_problem("int", "-11896414") is None and format_problem("int", "0") is None
    assert format_problem("HEX", "") is None and format_problem("base64", "") is None
    assert format_problem("node_id", "5576458aef205977e18fd50b274e9b5d9014525a") is None
    assert format_problem("node_id", "5576458AEF205977E18FD50B274E9B5D9014525A") is not None
    assert format_problem("time", "2019-04-22T17:00:00Z") is None
    assert format_problem("text", "anything") is None


def test_a_rule_allows_only_its_difference_at_its_path() -> None:
    assert problems(answer(proof={"ops": []}), {"proof": Rule("why", also=("object",))}) == []
    assert problems(answer(proof=[]), {"proof": Rule("why", also=("object",))}) == \
        ["proof: array where CometBFT has null"]
    assert problems(answer(signatures=[]), {"signatures": Rule("why", empty=True)}) == []
    assert problems(answer(signatures=[]), {"signatures[]": Rule("why", empty=True)}) != []
    no_hash = {k: v for k, v in DOC.items() if k != "hash"}
    assert problems(no_hash, {"hash": Rule("why", absent=True)}) == []
    assert problems(answer(round="0"), {"round": Rule("why", expect="0")}) == []
    assert problems(answer(round=0), {"round": Rule("why", expect="0")}) == \
        ["round: number where CometBFT has string"]
    assert problems(answer(hash="abc"), {"hash": Rule("why", format="text")}) == []
    # a rule at an array's items does not loosen the array itself, nor other keys
    lenient = {"signatures[].signature": Rule("why", also=("null",))}
    assert problems(answer(signatures=[{**DOC["signatures"][0], "signature": None}]), lenient) == []
    assert problems(answer(height=12), lenient) == ["height: number where CometBFT has string"]


def test_a_renamed_key_must_be_there_under_its_new_name() -> None:
    doc = {"deliver_tx": {"code": "0"}}
    rules = {"deliver_tx": Rule("why", rename="tx_result"), "tx_result.code": Rule("why", expect=0)}
    outcome = compare(doc, {"tx_result": {"code": 0}}, rules)
    assert outcome.problems == [] and outcome.extras == []
    assert compare(doc, {"deliver_tx": {"code": 0}}, rules).problems == ["tx_result: missing"]
    assert compare(doc, {"tx_result": {"code": "0"}}, rules).problems == \
        ["tx_result.code: string where CometBFT has number"]
    renamed_and_replaced = {"proof": Rule("why", rename="proofOps", expect={"ops": []})}
    assert compare({"proof": "0101"}, {"proofOps": {"ops": []}}, renamed_and_replaced).problems == []
    assert compare({"proof": "0101"}, {"proofOps": "0101"}, renamed_and_replaced).problems == \
        ["proofOps: string where CometBFT has object"]


def test_paths_name_where_rules_can_apply() -> None:
    doc = {"a": {"b": [{"c": 1}]}, "deliver_tx": {"code": "0"}, "data": ["x"]}
    rules = {"deliver_tx": Rule("why", rename="tx_result"), "data": Rule("why", expect={"txs": ["x"]})}
    assert set(paths(doc, rules)) == {"", "a", "a.b", "a.b[]", "a.b[].c", "deliver_tx", "tx_result",
                                      "tx_result.code", "data", "data.txs", "data.txs[]"}


@pytest.mark.parametrize("method", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_the_documents_own_examples_have_the_formats_asked_of_the_node(method: str) -> None:
    documented = fixture(method)
    assert compare(documented, documented).problems == []
