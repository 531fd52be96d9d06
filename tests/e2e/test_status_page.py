"""The status page at ``GET /`` in a real browser (headless Chromium): it shows the
chain, a height that advances as blocks come (over the node's WebSocket), the
validators as ``bizra_validators`` has them, a tx just committed, and it fits a phone's
width. Screenshots go to ``test-artifacts/`` in the checkout (or ``TEST_ARTIFACTS``).

Chromium comes from Debian's package ``chromium``; ``.ci/run`` installs it. Without it
the test is skipped, except in CI (``CI=true``), where it fails."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import trio

from chain.crypto import PrivateKey, address_of, private_key_from_pem
from chain.params import Params
from chain.types import Transfer
from node import devnet

from browserkit import browser, chromium, open_page
from chainkit import sign_tx
from nodekit import free_ports, height, processes, rpc, wait_until

pytestmark = pytest.mark.slow

CHAIN_ID = "bizra-page-1"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS")
                 or Path(__file__).resolve().parents[2] / "test-artifacts")
HEIGHT = "Number(document.getElementById('height').textContent.replace(/,/g, '')) || 0"


def test_the_status_page_shows_the_chain_live_in_a_browser(tmp_path: Path) -> None:
    executable = chromium()
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing (Debian package chromium; .ci/run installs it)")
        pytest.skip("Chromium is not installed (Debian package chromium)")
    p2p, rpc_port = free_ports(2), free_ports(2) + 20
    [node] = devnet.create(tmp_path, 1, chain_id=CHAIN_ID, p2p_port=p2p, rpc_port=rpc_port,
                           params=Params(block_time_ms=1_000))
    log = node.home.path / "node.log"
    faucet = private_key_from_pem((tmp_path / "faucet.key").read_bytes())
    with processes() as started, browser(executable) as devtools:
        started.append(devnet.start(node, log))
        wait_until(lambda: height(rpc_port) >= 1, 60, "height 1", [log])
        tx = sign_tx(CHAIN_ID, faucet, 0, Transfer(address_of(PrivateKey.generate().public_key), 5))
        committed = rpc(rpc_port, "broadcast_tx_commit", tx=base64.b64encode(tx).decode())
        assert committed["tx_result"]["code"] == 0, committed
        validators = rpc(rpc_port, "bizra_validators")["validators"]
        trio.run(_check_page, devtools, f"http://127.0.0.1:{rpc_port}/", committed["hash"], validators)


async def _check_page(devtools: str, url: str, tx_hash: str, validators: list[dict[str, str]]) -> None:
    async with trio.open_nursery() as nursery:
        page = await open_page(devtools, url, nursery)
        await page.resize(1280, 1000)
        assert await page.wait_for("document.getElementById('chain-id').textContent", 20) == CHAIN_ID
        await page.wait_for("document.getElementById('live').textContent === 'live'", 20)
        shown = int(await page.wait_for(HEIGHT, 20))
        await page.wait_for(f"({HEIGHT}) > {shown}", 20)  # live: a block later, without a reload

        rows = await page.evaluate("[...document.querySelectorAll('#validators tbody tr')].map(r => "
                                   "[r.dataset.address, r.querySelector('.power').textContent])")
        assert sorted(rows) == sorted([v["address"], f"{int(v['voting_power']):,}"] for v in validators)
        await page.wait_for("[...document.querySelectorAll('#latest-txs td[title]')].some(td => td.title === "
                            f"'{tx_hash}')", 20)
        bars = await page.evaluate("document.querySelectorAll('#intervals rect').length")
        assert bars >= 1
        await page.screenshot(ARTIFACTS / "status-page.png")

        await page.resize(390, 844, mobile=True)
        await trio.sleep(0.5)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than a phone's screen"
        await page.screenshot(ARTIFACTS / "status-page-phone.png")
        nursery.cancel_scope.cancel()
