"""HTTPHandler: the stdlib's web-server handler as an async sink, on one kept-alive connection.

The stdlib's ``HTTPHandler`` opens a new connection and waits for the answer inside every
log call, which stalls an event loop for a full round trip per record. This sink sends the
same requests (same path, query, body and headers by default) over one kept-alive
connection, on asyncio and trio alike. The queue's worker hands each batch to a thread of
the sink's own (a ``LentWriter`` that lends nothing), which encodes it and makes the
requests with a small blocking HTTP/1.1 client (``_http11``): waiting for a server never
wakes the loop, and the loop never waits for the thread's GIL for more than a slice of
work. Log collectors get opt-in batching, JSON/NDJSON bodies, gzip, retries and presets.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import logging
import random
import ssl
import threading
import time
import urllib.parse
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import anyio

from .._context import in_context
from .._handler import AsyncHandler
from .._version import __version__
from .._writer import LentWriter, let_the_loop_in
from ._http11 import (
    HTTPConnectionPool,
    HTTPResponse,
    TransportError,
    check_header,
    check_target,
    split_host,
)
from ._http_presets import (
    ElasticsearchBulkBody,
    FluentBitBody,
    HTTPBody,
    JSONArrayBody,
    LokiBody,
    NDJSONBody,
    OTLPLogsBody,
    VectorBody,
    default_service_name,
)

__all__ = ["HTTPHandler"]

BodyFormat = Literal["form", "json", "ndjson"]

#: The sink's thread lets go of the GIL after this many seconds of encoding, so that the
#: event loop, when it wakes, never waits for the GIL longer than that.
_SLICE_SECONDS = 0.0001

#: Bodies are built, compressed and written in pieces of about this size, the GIL let go
#: between them: a buffer of half a megabyte costs a quarter of a millisecond in page
#: faults alone, with the GIL held; a 16 KiB one next to nothing.
_PIECE = 16 * 1024

#: Sent with every request after Host: http.client's Accept-Encoding, and who is asking.
_FIXED_HEADERS = (("Accept-Encoding", "identity"), ("User-Agent", f"loopsink/{__version__}"))

#: HTTP statuses that mean "try again later" (besides every 5xx).
_RETRY_STATUSES = frozenset({429})


class HTTPDeliveryError(OSError):
    """A request carrying records failed for good (reported through ``handleError``)."""


def _basic_authorization(credentials: tuple[Any, Any]) -> str:
    # Built exactly as the stdlib builds it ('%s:%s' in UTF-8), so the header is byte-equal.
    token = ("%s:%s" % tuple(credentials)).encode("utf-8")  # noqa: UP031
    return "Basic " + base64.b64encode(token).strip().decode("ascii")


def _describe(exc: BaseException) -> str:
    """A one-line reason for a transport error, with the certificate's verdict dug out of
    the exceptions it wraps (the TLS layer's own message does not say what to do)."""
    seen: BaseException | None = exc
    chain: list[BaseException] = []
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for error in chain:
        if isinstance(error, ssl.SSLCertVerificationError):
            return (
                f"{type(exc).__name__}: the server's certificate was refused "
                f"({error.verify_message}); pass context=, an ssl.SSLContext that trusts "
                f"the server's CA"
            )
    for error in chain:
        if str(error):
            return f"{type(exc).__name__}: {error}"
    return type(exc).__name__


@functools.lru_cache(maxsize=4096)
def _quote_plus(text: str | bytes) -> str:
    return urllib.parse.quote_plus(text)


def urlencode(fields: Mapping[Any, Any]) -> str:
    """``urllib.parse.urlencode(fields)``, character for character, in a third of the time.

    A record's dict repeats most of its values from one record to the next (the logger,
    level, file, function, process and thread), so their quoted forms are remembered.
    """
    return "&".join(
        [
            _quote_plus(k if isinstance(k, bytes) else str(k))
            + "="
            + _quote_plus(v if isinstance(v, bytes) else str(v))
            for k, v in fields.items()
        ]
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HTTPHandler(AsyncHandler):
    """Sends records to a web server with GET or POST, as ``logging.handlers.HTTPHandler``.

    By default every record is one request whose bytes equal the stdlib's: the urlencoded
    :meth:`mapLogRecord` dict in the query string (GET) or as an
    ``application/x-www-form-urlencoded`` body (POST). Unlike the stdlib, the connection is
    kept alive between requests, an answer other than 2xx counts as a failure
    (``handleError``), and credentials are refused over plain HTTP unless you opt in.

    Everything below ``*`` is loopsink's and off by default.

    Args:
        host: ``"host"`` or ``"host:port"``.
        url: the path (and optional query) of the request, e.g. ``"/log"``.
        method: ``"GET"`` or ``"POST"`` (any case).
        secure: use HTTPS.
        credentials: ``(userid, password)`` sent as a Basic ``Authorization`` header.
        context: an ``ssl.SSLContext`` for HTTPS (needs ``secure=True``); ``None`` verifies
            the server against the system's CAs, as the stdlib does.
        allow_insecure_credentials: accept ``credentials`` with ``secure=False`` (they then
            cross the network in clear text).
        body: ``"form"`` (the stdlib's, one record per request), ``"json"`` (a JSON array of
            :meth:`mapLogRecord` dicts), ``"ndjson"`` (one dict per line), or an
            :class:`HTTPBody` such as the collector presets build. Batch bodies need POST.
        batch_size: the most records in one request (batch bodies; default 1024).
        batch_interval: the shortest time between the starts of two requests carrying
            less than ``batch_size`` records. After such a request the sink pauses, records
            gather in the queue meanwhile, and the next request carries them all: a trickle
            of records makes one request per interval instead of one per record. The first
            record is never held back, but the queue's ``flush()`` and shutdown may wait up
            to one interval. ``0`` (the default) sends whatever is waiting at once.
        gzip: compress the request body (``Content-Encoding: gzip``).
        timeout: seconds to connect, send, or wait for the answer, per attempt; ``None``
            waits forever, as the stdlib does.
        retries: how many times a request is tried again after a connection error, a
            timeout, a 429 or a 5xx answer (never after another 4xx).
        retry_backoff: the first pause before a retry, doubled on each further retry, with
            jitter; a ``Retry-After`` header asking for longer is honoured.
        retry_max_delay: the longest single pause between attempts.
        headers: extra request headers (e.g. an API key for a collector).
    """

    def __init__(
        self,
        host: str,
        url: str,
        method: str = "GET",
        secure: bool = False,
        credentials: tuple[str, str] | None = None,
        context: ssl.SSLContext | None = None,
        *,
        allow_insecure_credentials: bool = False,
        body: BodyFormat | HTTPBody = "form",
        batch_size: int | None = None,
        batch_interval: float = 0.0,
        gzip: bool = False,
        timeout: float | None = 5.0,
        retries: int = 0,
        retry_backoff: float = 0.5,
        retry_max_delay: float = 30.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(host, str) or not host:
            raise TypeError(
                f"HTTPHandler host must be a non-empty str such as 'localhost:8080', got {host!r}"
            )
        split_host(host, 80)  # a bad port fails here, not at the first record
        if not isinstance(url, str):
            raise TypeError(f"HTTPHandler url must be a str path such as '/log', got {url!r}")
        check_target(url)
        if not isinstance(method, str) or method.upper() not in ("GET", "POST"):
            raise ValueError(f"method must be 'GET' or 'POST', got {method!r}")
        method = method.upper()
        if not secure and context is not None:
            raise ValueError(
                f"context={context!r} only makes sense with secure=True; pass secure=True "
                f"or drop context"
            )
        if context is not None and not isinstance(context, ssl.SSLContext):
            raise TypeError(f"context must be an ssl.SSLContext, got {context!r}")
        if credentials is not None:
            if not isinstance(credentials, (tuple, list)) or len(credentials) != 2:
                raise TypeError(
                    f"credentials must be a (userid, password) pair, "
                    f"got a {type(credentials).__name__}"
                )
            if not secure and not allow_insecure_credentials:
                raise ValueError(
                    f"HTTPHandler would send the password of {credentials[0]!r} in clear text "
                    f"to http://{host}: use secure=True, or pass "
                    f"allow_insecure_credentials=True to accept that"
                )
        self.host = host
        self.url = url
        self.method = method
        self.secure = secure
        self.credentials = credentials
        self.context = context
        self.allow_insecure_credentials = allow_insecure_credentials
        self._encoder = self._check_body(body, method)
        self.body: BodyFormat | HTTPBody = body
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, int):
                raise TypeError(f"batch_size must be an int, got {batch_size!r}")
            if batch_size < 1:
                raise ValueError(f"batch_size must be at least 1, got {batch_size}")
            if self._encoder is None and batch_size != 1:
                raise ValueError(
                    f"batch_size={batch_size} needs a batch body: the stdlib's form body "
                    f"carries one record; pass body='json', 'ndjson' or a preset"
                )
        self.batch_size = batch_size or (1 if self._encoder is None else type(self).max_batch_size)
        if self._encoder is not None:
            self.max_batch_size = self.batch_size
        self.batch_interval = self._non_negative("batch_interval", batch_interval)
        if self.batch_interval and self._encoder is None:
            raise ValueError(
                f"batch_interval={batch_interval} needs a batch body: pass body='json', "
                f"'ndjson' or a preset"
            )
        if gzip and method != "POST":
            raise ValueError("gzip=True compresses a request body: it needs method='POST'")
        self.gzip = bool(gzip)
        if timeout is not None:
            timeout = self._non_negative("timeout", timeout)
            if timeout == 0:
                raise ValueError("timeout must be more than 0 seconds, or None to wait forever")
        self.timeout = timeout
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise TypeError(f"retries must be an int, got {retries!r}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        self.retries = retries
        self.retry_backoff = self._non_negative("retry_backoff", retry_backoff)
        self.retry_max_delay = self._non_negative("retry_max_delay", retry_max_delay)
        self.headers = dict(headers or {})
        for name, value in self.headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"headers must map str to str, got {name!r}: {value!r}")
            check_header(name, value)
        self._authorization = _basic_authorization(credentials) if credentials else None
        self._client: HTTPConnectionPool | None = None
        self._closed_connections = 0  # opened by connection pools closed since
        # lend=0: its jobs wait on the network (see _writer's docstring)
        self._sender = LentWriter(f"loopsink HTTPHandler {host}", lend=0.0)
        self._closing = threading.Event()  # set by close(): a pending retry gives up
        self._retried = 0
        self._requests = 0

    @staticmethod
    def _non_negative(name: str, value: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number of seconds, got {value!r}")
        if not value >= 0:
            raise ValueError(f"{name} must be 0 or more seconds, got {value!r}")
        return float(value)

    @staticmethod
    def _check_body(body: object, method: str) -> HTTPBody | None:
        if body == "form":
            return None
        if body == "json":
            encoder: HTTPBody = JSONArrayBody()
        elif body == "ndjson":
            encoder = NDJSONBody()
        elif isinstance(body, HTTPBody):
            encoder = body
        else:
            raise ValueError(
                f"body must be 'form', 'json', 'ndjson' or an HTTPBody (a preset), got {body!r}"
            )
        if method != "POST":
            raise ValueError(
                f"body={body!r} sends records in a request body: it needs method='POST'"
            )
        return encoder

    # -- the stdlib's surface --------------------------------------------------------------

    def mapLogRecord(self, record: logging.LogRecord) -> dict[str, Any]:
        """The dict sent for ``record``: its ``__dict__``, as in the stdlib. Override to
        send a subset or another shape (also the item of ``"json"``/``"ndjson"`` bodies)."""
        return record.__dict__

    async def emit(self, record: logging.LogRecord) -> None:
        """Send one record; a failure raises (``handle`` and the queue report it)."""
        await self._sender.run(self._send_one, record)

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        """Send records in order: one request each with the form body, batches otherwise.

        The requests are made by the sink's own thread; the loop only hands the records
        over. Failures are reported there (``handleError``, one count per record), never
        raised.
        """
        if self._encoder is None:
            await self._sender.run(self._send_each, records)
            return
        size = self.batch_size
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            began = time.monotonic()
            await self._sender.run(self._send_chunk, chunk)
            if self.batch_interval and len(chunk) < size:
                # Pause with the lane busy, so what arrives meanwhile makes one request.
                await anyio.sleep(max(0.0, began + self.batch_interval - time.monotonic()))

    async def close(self) -> None:
        """Close the connection. The sink may still be used: it then reconnects."""
        self._closing.set()  # a retry that waits gives up now
        try:
            await self._sender.run(self._close_client)
        finally:
            self._sender.stop()
            self._closing.clear()
            await super().close()

    def describe(self) -> str:
        """The sink's name, or where it sends: two HTTP sinks stay apart in ``queue.stats``."""
        return self.name or f"HTTPHandler {self.method} {self._address()}{self.url}"

    # -- statistics ------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """How many HTTP requests were sent (retries included)."""
        return self._requests

    @property
    def connection_count(self) -> int:
        """How many connections were opened: one serves every request while the server
        keeps it alive."""
        current = self._client.connections_opened if self._client is not None else 0
        return self._closed_connections + current

    @property
    def retry_count(self) -> int:
        """How many requests failed and were tried again."""
        return self._retried

    # -- presets ---------------------------------------------------------------------------

    @classmethod
    def loki(
        cls,
        host: str,
        url: str = "/loki/api/v1/push",
        *,
        labels: Mapping[str, str] | None = None,
        level_label: str | None = "level",
        **options: Any,
    ) -> HTTPHandler:
        """A sink for Grafana Loki's push API (JSON streams, one per level by default).

        ``labels`` defaults to ``{"job": "loopsink"}``; other keyword arguments are the
        constructor's (``secure``, ``credentials``, ``headers`` for ``X-Scope-OrgID``…).
        """
        return cls._preset(host, url, LokiBody(labels, level_label), options)

    @classmethod
    def elasticsearch(
        cls,
        host: str,
        index: str,
        *,
        op_type: str = "create",
        **options: Any,
    ) -> HTTPHandler:
        """A sink for the Elasticsearch / OpenSearch ``_bulk`` API, into ``index``.

        ``op_type="create"`` works for data streams and plain indices; documents follow the
        Elastic Common Schema (``@timestamp``, ``message``, ``log.level``, ``log.logger``…).
        Documents that ``_bulk`` refuses inside a 200 answer are reported one by one.
        """
        quoted = urllib.parse.quote(index, safe="")
        return cls._preset(host, f"/{quoted}/_bulk", ElasticsearchBulkBody(None, op_type), options)

    opensearch = elasticsearch

    @classmethod
    def otlp(
        cls,
        host: str,
        url: str = "/v1/logs",
        *,
        service_name: str | None = None,
        resource_attributes: Mapping[str, object] | None = None,
        **options: Any,
    ) -> HTTPHandler:
        """A sink for an OpenTelemetry collector's OTLP/HTTP logs endpoint, JSON encoding.

        ``service_name`` defaults to ``$OTEL_SERVICE_NAME``, then ``"unknown_service"``.
        """
        service = service_name if service_name is not None else default_service_name()
        return cls._preset(host, url, OTLPLogsBody(service, resource_attributes), options)

    @classmethod
    def vector(cls, host: str, url: str = "/", **options: Any) -> HTTPHandler:
        """A sink for Vector's ``http_server`` source with newline-delimited JSON events."""
        return cls._preset(host, url, VectorBody(), options)

    @classmethod
    def fluent_bit(cls, host: str, tag: str = "loopsink", **options: Any) -> HTTPHandler:
        """A sink for Fluent Bit's ``http`` input; ``tag`` becomes the URL path, as it expects."""
        return cls._preset(host, "/" + urllib.parse.quote(tag), FluentBitBody(), options)

    @classmethod
    def _preset(cls, host: str, url: str, body: HTTPBody, options: dict[str, Any]) -> HTTPHandler:
        if "body" in options or "method" in options:
            raise TypeError("a preset chooses body and method itself; build HTTPHandler directly")
        options.setdefault("retries", 5)
        return cls(host, url, "POST", body=body, **options)

    # -- inside ----------------------------------------------------------------------------

    # Everything below runs in the sink's thread (see emit_batch), one job at a time.

    def _get_client(self) -> HTTPConnectionPool:
        if self._client is None:
            context = self.context
            if self.secure and context is None:
                context = ssl.create_default_context()  # the system's CAs, as http.client
            self._client = HTTPConnectionPool(
                self.host, ssl_context=context if self.secure else None, timeout=self.timeout
            )
        return self._client

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            self._closed_connections += client.connections_opened
            client.close()

    def _address(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}"

    def _send_one(self, record: logging.LogRecord) -> None:
        if self._encoder is None:
            self._send_form(record)
            return
        pieces, done = self._encode([record])
        if done:
            self._send_batch(pieces, done)

    def _send_each(self, records: Sequence[logging.LogRecord]) -> None:
        for record in records:
            try:
                self._send_form(record)
            except Exception:
                self.handleError(record)
            let_the_loop_in()  # the loop may be waiting to run between two requests

    def _send_chunk(self, chunk: Sequence[logging.LogRecord]) -> None:
        try:
            pieces, done = self._encode(chunk)
        except Exception:
            self.report_batch_failure(chunk)
            return
        if not done:
            return
        try:
            self._send_batch(pieces, done)
        except Exception:
            self.report_batch_failure(done)

    def _send_form(self, record: logging.LogRecord) -> None:
        data = urlencode(in_context(record, self.mapLogRecord, record))
        headers = dict(self.headers)
        if self.method == "GET":
            target = self.url + ("&" if "?" in self.url else "?") + data
            content = None
        else:
            target = self.url
            content = data.encode("utf-8")
            headers["Content-type"] = "application/x-www-form-urlencoded"
            if self.gzip:
                content = b"".join(self._compress([content]))
                headers["Content-Encoding"] = "gzip"
            headers["Content-length"] = str(len(content))  # the stdlib's spelling
        self._request(target, content, headers)

    def _encode(
        self, records: Sequence[logging.LogRecord]
    ) -> tuple[list[bytes], list[logging.LogRecord]]:
        """The body for ``records`` as pieces (of about 16 KiB with ``framing``), and the
        records it carries.

        The GIL is let go every slice of work, so the loop never waits long for it; a body
        with ``framing`` is assembled piece by piece as it goes, any other joined at the end.
        """
        encoder = self._encoder
        assert encoder is not None
        framing = encoder.framing if type(encoder).join is HTTPBody.join else None
        separator = framing[1] if framing is not None else ""
        pieces: list[bytes] = []
        parts: list[str] = [framing[0]] if framing is not None else []
        size = 0
        done: list[logging.LogRecord] = []
        clock = time.perf_counter
        deadline = clock() + _SLICE_SECONDS
        for record in records:
            try:
                text = in_context(record, encoder.encode_record, self, record)
            except Exception:
                self.handleError(record)
            else:
                if done and separator:
                    parts.append(separator)
                done.append(record)
                parts.append(text)
                if framing is not None:
                    size += len(text)
                    if size >= _PIECE:
                        pieces.append("".join(parts).encode("utf-8"))
                        parts, size = [], 0
            if clock() > deadline:
                let_the_loop_in()
                deadline = clock() + _SLICE_SECONDS
        if framing is not None:
            parts.append(framing[2])
            pieces.append("".join(parts).encode("utf-8"))
        else:
            pieces.append(encoder.join(done, parts).encode("utf-8"))
        if self.gzip:
            pieces = self._compress(pieces)
        return pieces, done

    def _compress(self, pieces: Sequence[bytes]) -> list[bytes]:
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip container
        out = []
        for piece in pieces:
            view = memoryview(piece)
            for start in range(0, len(piece), _PIECE):
                out.append(compressor.compress(view[start : start + _PIECE]))
                let_the_loop_in()
        out.append(compressor.flush())
        return [piece for piece in out if piece]

    def _send_batch(self, content: list[bytes], records: list[logging.LogRecord]) -> None:
        encoder = self._encoder
        assert encoder is not None
        headers = dict(self.headers)
        headers["Content-Type"] = encoder.content_type
        if self.gzip:
            headers["Content-Encoding"] = "gzip"
        response = self._request(self.url, content, headers)
        for record, reason in encoder.rejected(response.status_code, response.content, records):
            self._report_rejected(record, reason)

    def _report_rejected(self, record: logging.LogRecord, reason: str) -> None:
        try:
            raise HTTPDeliveryError(reason)
        except HTTPDeliveryError:
            self.handleError(record)

    def _request(
        self, target: str, content: bytes | Sequence[bytes] | None, headers: dict[str, str]
    ) -> HTTPResponse:
        """Send one request, retrying as configured; raise HTTPDeliveryError when it fails."""
        client = self._get_client()
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        # The request target goes on the wire exactly as given, as http.client sends it.
        pairs = [*_FIXED_HEADERS, *headers.items()]
        address = self._address()
        attempt = 0
        while True:
            retry_after: float | None = None
            self._requests += 1
            try:
                response = client.request(self.method, target, pairs, content)
            except TransportError as exc:
                failure: BaseException = exc
                reason = _describe(exc)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                reason = f"the server answered {status} {response.reason_phrase}"
                text = response.text[:200].strip()
                if text:
                    reason += f": {text}"
                failure = HTTPDeliveryError(reason)
                if status not in _RETRY_STATUSES and status < 500:
                    raise HTTPDeliveryError(
                        f"{self.method} {address}{target[:80]} failed: {reason} (not retried: "
                        f"a 4xx other than 429 means the request itself is wrong)"
                    )
                retry_after = _retry_after(response.header("Retry-After"))
            if attempt >= self.retries:
                tries = f"{attempt + 1} attempts" if attempt else "1 attempt"
                hint = "" if self.retries else "; pass retries=N to try again"
                raise HTTPDeliveryError(
                    f"{self.method} {address}{target[:80]} failed after {tries}: {reason}{hint}"
                ) from failure
            delay = min(self.retry_max_delay, self.retry_backoff * 2**attempt)
            delay = delay / 2 + random.uniform(0, delay / 2)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.retry_max_delay))
            attempt += 1
            self._retried += 1
            if self._closing.wait(delay):
                raise HTTPDeliveryError(
                    f"{self.method} {address}{target[:80]} failed: {reason}; the sink was "
                    f"closed while it waited to try again"
                ) from failure
