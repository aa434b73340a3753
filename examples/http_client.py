"""Send logs through your own ``httpx.Client``, and test them with ``httpx.MockTransport``.

``HTTPHandler(..., client=httpx.Client(...))`` makes every request through the client you
configured for the rest of your app: its proxies (also ``HTTPS_PROXY`` / ``NO_PROXY``),
HTTP/2, auth flow, certificates and event hooks. The same hook makes the sink easy to test:
give it a client whose transport is an ``httpx.MockTransport`` and look at the requests it
would have sent, without a server. Here a small "app" logs through the plain ``logging``
API into an Elasticsearch ``_bulk`` preset; the mock answers like ``_bulk`` does, refusing
one document inside a 200 answer, and the example checks what was sent and what the sink
reported.

Run it: ``python examples/http_client.py`` (needs ``pip install 'loopsink[http]'``).
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx

import loopsink


class FakeBulk:
    """Answers as Elasticsearch's ``_bulk`` does, keeping what it was sent."""

    def __init__(self) -> None:
        self.documents: list[dict[str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        lines = request.read().decode().splitlines()
        sources = [json.loads(line) for line in lines[1::2]]  # action, source, action, ...
        self.documents.extend(sources)
        items = [
            {"create": {"status": 400, "error": {"type": "mapper_parsing_exception"}}}
            if "poison" in str(doc["message"])
            else {"create": {"status": 201}}
            for doc in sources
        ]
        return httpx.Response(200, json={"errors": True, "items": items})


async def main() -> None:
    bulk = FakeBulk()
    sent: list[str] = []
    client = httpx.Client(
        transport=httpx.MockTransport(bulk),
        event_hooks={"request": [lambda request: sent.append(f"{request.method} {request.url}")]},
    )
    sink = loopsink.HTTPHandler.elasticsearch("es.internal:9200", "logs-shop", client=client)
    logging.raiseExceptions = False  # the refused document is counted, not printed
    log = logging.getLogger("shop")
    log.setLevel(logging.INFO)
    async with loopsink.install(sink, logger=log):
        for order in range(5):
            log.info("order %d paid", order)
        log.warning("poison pill in order %d", 5)
    client.close()  # the client is yours: the sink never closes it

    messages = [doc["message"] for doc in bulk.documents]
    assert messages == [*(f"order {i} paid" for i in range(5)), "poison pill in order 5"]
    assert set(sent) == {"POST http://es.internal:9200/logs-shop/_bulk"}
    assert sink.error_count == 1  # _bulk refused one document inside its 200 answer
    print(f"{len(sent)} request(s): {sent[0]}")
    print(f"{len(messages)} documents sent, {sink.error_count} refused by _bulk")


if __name__ == "__main__":
    asyncio.run(main())
