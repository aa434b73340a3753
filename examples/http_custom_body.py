"""Ship formatted log lines to a collector of your own with a custom ``HTTPBody``.

Many log intakes take plain text, one line per event. ``PlainLines`` below turns each record
into the handler's formatted line and sets ``framing`` (prefix, separator, suffix), so the
sink builds each request body in 16 KiB pieces as it goes, on the loop in short slices, and
never holds a whole batch as one large buffer. The example starts its own intake on 127.0.0.1 (an
aiohttp app that keeps every line it is sent), logs 2,000 records through the plain
``logging`` API, and checks that each arrived once, in order.

Run it: ``python examples/http_custom_body.py`` (the stand-in intake needs
``pip install 'loopsink[aiohttp]'``; the sink needs ``loopsink[http]``).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

import loopsink

COUNT = 2_000


class PlainLines(loopsink.HTTPBody):
    """The handler's formatted text, one line per record."""

    content_type = "text/plain; charset=utf-8"
    framing = ("", "\n", "\n")

    def encode_record(self, handler: loopsink.HTTPHandler, record: logging.LogRecord) -> str:
        return handler.format(record).replace("\n", "\\n")  # one record, one line


async def start_intake(lines: list[str]) -> tuple[web.AppRunner, str]:
    async def ingest(request: web.Request) -> web.Response:
        lines.extend((await request.text()).splitlines())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/ingest", ingest)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"127.0.0.1:{port}"


async def main() -> None:
    lines: list[str] = []
    runner, host = await start_intake(lines)
    sink = loopsink.HTTPHandler(host, "/ingest", "POST", body=PlainLines(), batch_size=500)
    sink.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("shop.orders")
    logger.setLevel(logging.INFO)
    try:
        async with loopsink.install(sink, logger=logger):
            for number in range(COUNT):
                logger.info("order %d shipped", number)
                if number % 100 == 99:
                    await asyncio.sleep(0)  # a service yields between requests
    finally:
        await runner.cleanup()
    expected = [f"INFO shop.orders: order {n} shipped" for n in range(COUNT)]
    assert lines == expected, f"{len(lines)} lines arrived, {COUNT} were logged"
    print(
        f"{len(lines)} lines arrived once each, in order, in {sink.request_count} requests "
        f"over {sink.connection_count} connection"
    )


if __name__ == "__main__":
    asyncio.run(main())
