"""A libp2p node in its own process, for the network tests over loopback.

``python p2pnode.py SEED [--chain ID] [--port N] [--bootnode ADDR] [--discover]
[--publish TEXT] [--junk N] [--request BYTES]``
prints ``addr <multiaddr>`` once listening, then one line per event: ``joined <peer>``,
``left <peer>``, ``got <text>``, ``response <bytes>``; it runs until killed. With
``--discover`` its peer manager dials the bootnode and the peers it learns of (and it
prints ``peers <n>`` as the count changes); without, it dials the bootnode once.
"""

from __future__ import annotations

import argparse
from hashlib import sha256

import trio

from chain.errors import NetworkError
from p2p.host import Libp2pNetwork
from p2p.network import Validation
from p2p.peering import PeerManager
from p2p.peers import PeerId
from p2p.status import StatusService

TOPIC = "/bizra/bizra-test-1/txs/1"
ECHO = "/bizra/bizra-test-1/echo/1"


def say(*words: object) -> None:
    print(*words, flush=True)


async def validate(peer: PeerId, data: bytes) -> Validation:
    return Validation.REJECT if data.startswith(b"junk") else Validation.ACCEPT


async def echo(peer: PeerId, data: bytes) -> bytes:
    return data


async def main(args: argparse.Namespace) -> None:
    net = Libp2pNetwork(sha256(b"p2p test node %d" % args.seed).digest(), port=args.port)
    status = StatusService(net, args.chain, sha256(args.chain.encode()).digest(), lambda: 0, net.listen_addrs)
    messages = net.subscribe(TOPIC, validate)
    net.set_handler(ECHO, echo, max_request_bytes=8 << 20)
    events = net.peer_events()
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        await nursery.start(status.run)
        say("addr", net.listen_addrs()[0])

        async def report_events() -> None:
            async for event in events:
                say("joined" if event.connected else "left", event.peer)

        async def report_messages() -> None:
            async for message in messages:
                say("got", message.data.decode())

        async def report_peer_count() -> None:
            count = 0
            while True:
                if len(net.peers()) != count:
                    count = len(net.peers())
                    say("peers", count)
                await trio.sleep(0.1)

        nursery.start_soon(report_events)
        nursery.start_soon(report_messages)
        if args.discover:
            await nursery.start(PeerManager(net, status, [args.bootnode] if args.bootnode else []).run)
            nursery.start_soon(report_peer_count)
            if args.publish:
                while len(net.peers()) < args.discover:
                    await trio.sleep(0.1)
                await trio.sleep(2)  # a heartbeat or two: the mesh forms
                for i in range(10):
                    await net.publish(TOPIC, f"{args.publish} {i}".encode())
                    await trio.sleep(0.5)
        elif args.bootnode:
            peer = await net.connect(args.bootnode)
            await trio.sleep(2)  # a heartbeat or two: the mesh forms
            for i in range(args.junk):
                await net.publish(TOPIC, b"junk %d" % i)
            if args.publish:
                for i in range(10):
                    await net.publish(TOPIC, f"{args.publish} {i}".encode())
                    await trio.sleep(0.5)
            if args.request:
                try:
                    answer = await net.request(peer, ECHO, bytes(range(256)) * (args.request // 256),
                                               max_response_bytes=8 << 20, timeout=30)
                    say("response", len(answer))
                except NetworkError as exc:
                    say("request-failed", exc)
        await trio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("seed", type=int)
    parser.add_argument("--chain", default="bizra-test-1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bootnode")
    parser.add_argument("--discover", type=int, default=0, help="find peers; publish once this many")
    parser.add_argument("--publish")
    parser.add_argument("--junk", type=int, default=0)
    parser.add_argument("--request", type=int, default=0)
    trio.run(main, parser.parse_args())
