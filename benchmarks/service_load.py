"""A small HTTP/1.1 load generator, for bench_service.py where ``wrk`` is not installed.

``python benchmarks/service_load.py PORT SECONDS CONNECTIONS`` keeps CONNECTIONS keep-alive
connections busy for SECONDS, asking for ``/orders/N`` and ``/items/N`` in turn, and prints
``{"rps": ..., "p50_ms": ..., "p99_ms": ...}``. It runs in a process of its own so that its
work does not share the server's interpreter.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def connection(port: int, until: float, latencies: list[float], offset: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    n = offset
    try:
        while clock() < until:
            n += 1
            path = f"/items/{n}" if n % 2 == 0 else f"/orders/{n}"
            started = clock()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected reply: {head[:80]!r}")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(clock() - started)
    finally:
        writer.close()


async def main(port: int, seconds: float, connections: int) -> None:
    latencies: list[float] = []
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(
        *(connection(port, until, latencies, i * 1_000_000) for i in range(connections))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(
        json.dumps(
            {
                "rps": len(latencies) / elapsed,
                "p50_ms": latencies[len(latencies) // 2] * 1e3,
                "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])))
