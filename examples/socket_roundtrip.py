"""Records over TCP and UDP to a loopsink receiver, through a receiver restart, losing none.

The example starts ``loopsink.receiver.LogReceiver`` on two loopback ports (TCP and UDP) and
prints what it receives. The app then logs through ``loopsink.SocketHandler`` and
``loopsink.DatagramHandler`` (the stdlib's wire format), and:

1. logs a few records, one with a traceback;
2. takes the TCP receiver down, logs while nobody listens, and brings it back on the same
   port: the records logged during the outage wait in the sink and arrive, in order, after
   the reconnection (the stdlib's ``SocketHandler`` would have dropped them);
3. sends one record with the stdlib's own ``logging.handlers.SocketHandler`` to show that
   the receiver reads it as well.

It exits with status 1 if a record is missing. Run it with
``python examples/socket_roundtrip.py``; it takes about a second.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys

import anyio

import loopsink
from loopsink.receiver import LogReceiver

FORMAT = "  received  %(levelname)-7s %(name)s: %(message)s"


async def main() -> int:
    printer = loopsink.StreamHandler(sys.stdout)
    printer.setFormatter(logging.Formatter(FORMAT))
    app = logging.getLogger("shop")
    app.setLevel(logging.INFO)
    app.propagate = False

    async with LogReceiver(printer) as udp_receiver:
        udp_host, udp_port = await udp_receiver.listen_udp("127.0.0.1", 0)
        # facing a network: a bound on connections and on how long one frame may take
        tcp_receiver = LogReceiver(printer, max_connections=64, frame_timeout=5.0)
        async with tcp_receiver:
            host, port = await tcp_receiver.listen_tcp("127.0.0.1", 0)
            tcp = loopsink.SocketHandler(host, port)
            tcp.retryStart, tcp.retryMax = 0.05, 0.2  # reconnect quickly for the demo
            udp = loopsink.DatagramHandler(udp_host, udp_port)
            udp.setLevel(logging.WARNING)  # only warnings and above go over UDP

            async with loopsink.install(tcp, udp, logger=app) as queue:
                print(f"1. logging to tcp {host}:{port} and udp {udp_host}:{udp_port}")
                app.info("order %s placed", 1001)
                app.warning("stock of %s is low: %d left", "blue mug", 3)
                try:
                    int("SPRING-SALE")
                except ValueError:
                    app.exception("coupon code is not a number")
                with anyio.fail_after(5):
                    await queue.flush()
                    await tcp_receiver.wait_received(3)
                    await udp_receiver.wait_received(2)

                print("2. the TCP receiver goes down; the app keeps logging")
                await tcp_receiver.aclose()
                for order in range(1002, 1006):
                    app.info("order %s placed while the receiver was down", order)
                with anyio.fail_after(5):
                    while tcp.connect_failures == 0:  # the sink notices the outage
                        await anyio.sleep(0.01)
                print(f"   {queue.stats.sinks[0].pending} records wait in the SocketHandler")
                async with LogReceiver(
                    printer, max_connections=64, frame_timeout=5.0
                ) as tcp_receiver:
                    await tcp_receiver.listen_tcp(host, port)
                    print("   the TCP receiver is back on the same port")
                    with anyio.fail_after(5):
                        await queue.flush()
                        await tcp_receiver.wait_received(4)

                    print("3. the stdlib's own SocketHandler, to the same receiver")
                    stdlib = logging.handlers.SocketHandler(host, port)
                    stdlib.handle(
                        logging.LogRecord("legacy", logging.INFO, __file__, 1, "hello", None, None)
                    )
                    stdlib.close()
                    with anyio.fail_after(5):
                        await tcp_receiver.wait_received(5)
    stats = queue.stats
    lost = stats.dropped_total + sum(sink.errors for sink in stats.sinks)
    print(f"done: {stats.sinks[0].emitted} records sent over TCP, {lost} lost")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
