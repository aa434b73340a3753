"""Ship logs to a Loki-style collector over HTTP, in batches, riding out a failing server.

The example starts its own collector on 127.0.0.1 (an aiohttp app that speaks Loki's push
API and answers the first push with 503), then logs through the plain ``logging`` API. The
records reach ``loopsink.HTTPHandler.loki`` through the loop-owned queue: the log calls
never wait for the network, the first batch is retried after the 503, and leaving
``install`` flushes everything before the program ends.

Run it: ``python examples/http_collector.py`` (the stand-in collector needs
``pip install 'loopsink[aiohttp]'``; the sink needs ``loopsink[http]``).
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

import loopsink


async def start_collector(received: list[dict[str, object]]) -> tuple[web.AppRunner, str]:
    """A tiny Loki stand-in: stores every stream it is sent; the first push gets a 503."""
    pushes = 0

    async def push(request: web.Request) -> web.Response:
        nonlocal pushes
        pushes += 1
        if pushes == 1:
            return web.Response(status=503, headers={"Retry-After": "0"})
        received.extend(json.loads(await request.read())["streams"])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/loki/api/v1/push", push)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"127.0.0.1:{port}"


async def main() -> None:
    received: list[dict[str, object]] = []
    runner, host = await start_collector(received)
    loki = loopsink.HTTPHandler.loki(host, labels={"job": "example"}, retries=3, retry_backoff=0.05)
    loki.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    log = logging.getLogger("shop.orders")
    log.setLevel(logging.INFO)

    async with loopsink.install(loki, logger=log) as queue:
        for order in range(1, 6):
            log.info("order %d paid", order)  # returns at once: no HTTP round trip here
        log.error("order %d refused: card expired", 6)
        await queue.flush()  # every record above has been answered by the collector
        print(f"requests sent: {loki.request_count}, retried: {loki.retry_count}")

    await runner.cleanup()
    for stream in received:
        print(stream["stream"])
        for timestamp, line in stream["values"]:  # type: ignore[attr-defined]
            print(f"  {timestamp}  {line}")


if __name__ == "__main__":
    asyncio.run(main())
