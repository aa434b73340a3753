"""HTTPHandler: the stdlib's web-server handler as an async sink, on one kept-alive connection.

The stdlib's ``HTTPHandler`` opens a new connection and waits for the answer inside every
log call, which stalls an event loop for a full round trip per record. This sink sends the
same requests (same path, query, body and headers by default) over one kept-alive
connection, on asyncio and trio alike. Records are formatted and encoded on the loop, in
short slices, as every stdlib handler formats them in the caller's thread; the bytes go to
a thread of the sink's own (an ``Executor`` that lends nothing), which compresses them and
makes the requests through a transport (``_http_transport``: h11, httpx's HTTP/1.1 engine,
by default; a user's ``httpx.Client`` with ``client=``). Waiting for a server never wakes
the loop. Log collectors get opt-in batching, JSON/NDJSON bodies, gzip, retries and presets.
"""

from __future__ import annotations

import base64
import email.utils
import logging
import random
import ssl
import threading
import time
import urllib.parse
import zlib
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import anyio

from .._context import in_context, run_each_in_context
from .._exceptions import require
from .._executor import Executor, Job
from .._handler import CONTEXT_FREE_FORMATTERS, AsyncHandler
from .._tuning import (
    ENCODE_CHECK_EVERY,
    ENCODE_SLICE,
    ENCODE_SLICE_MAX,
    HTTP_HELD_EARLY,
    HTTP_LEND,
    HTTP_LOOK_EVERY,
    HTTP_LOOK_LEND,
    HTTP_PIECE,
    LATE_FAILURE_LOOK,
    LINGER,
)
from .._turns import Turns
from .._version import __version__
from .._writer import let_the_loop_in
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
from ._http_transport import (
    ClientTransport,
    H11Transport,
    Request,
    Response,
    Transport,
    TransportError,
    check_header,
    check_target,
    split_host,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["HTTPHandler"]

BodyFormat = Literal["form", "json", "ndjson"]

#: The most bytes of a 2xx answer's body kept: it may carry what a body reads back
#: (``_bulk``'s per-document verdicts for a large batch). Other answers keep less (their
#: start is for the message). A longer body is not read on: the connection is closed
#: instead, so a server answering without end costs this much memory and no more.
_SUCCESS_LIMIT = 4 * 1024 * 1024

#: A failure of a request nobody waited for: the error, the first record, how many records.
_LateFailure = tuple[BaseException, logging.LogRecord, int]

#: Headers that frame a request or manage its connection: the transport's alone. One more
#: Content-Length or Host from the user cuts bodies or smuggles requests past the server.
_TRANSPORT_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
    }
)

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


#: Quoted field names. Only names (a record's attribute names, a small set fixed by code)
#: are remembered: values are the records' own text, which no cache may keep alive.
_quoted_names: dict[str, str] = {}
_QUOTED_NAMES_MAX = 1024


def _quote_name(name: object) -> str:
    if not isinstance(name, str):
        return urllib.parse.quote_plus(name if isinstance(name, bytes) else str(name))
    quoted = _quoted_names.get(name)
    if quoted is None:
        quoted = urllib.parse.quote_plus(name)
        if len(_quoted_names) < _QUOTED_NAMES_MAX:
            _quoted_names[name] = quoted
    return quoted


def urlencode(fields: Mapping[Any, Any]) -> str:
    """``urllib.parse.urlencode(fields)``, character for character."""
    quote = urllib.parse.quote_plus
    return "&".join(
        [
            _quote_name(k) + "=" + quote(v if isinstance(v, bytes) else str(v))
            for k, v in fields.items()
        ]
    )


def _not_retried(status: int, response: Response) -> str:
    """Why an answer that is neither 2xx, 429 nor 5xx is final, and what to do about it."""
    if 300 <= status < 400:
        location = response.header("Location")
        where = f" ({location[:200]})" if location else ""
        return (
            f"not retried: a {status} is a redirect{where}, which HTTPHandler does not "
            f"follow; point host= and url= at the final address"
        )
    return f"not retried: a {status} means the server refuses the request itself"


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
        batch_interval: under a queue, how long a request that is not full waits for
            more records after the last one began: each batch is encoded as it comes and
            held, so a trickle makes one request per interval. ``None`` (the default): the
            queue's linger, 20 ms; ``0``: every batch goes at once. The first record after
            a quiet spell is never held back, and ``flush()`` and closing send what is held
            at once. Called directly (no queue), and for bodies with a ``join`` of their own
            (Loki's, OTLP's), whose batches cannot be joined, the sink instead pauses this
            long after a request that was not full (``None``: no pause), and ``flush()``
            may wait for the pause.
        gzip: compress the request body (``Content-Encoding: gzip``).
        timeout: seconds to connect, send, or wait for the answer, per attempt; ``None``
            waits forever, as the stdlib does.
        retries: how many times a request is tried again after a connection error, a
            timeout, a 429 or a 5xx answer (never after another 4xx).
        retry_backoff: the first pause before a retry, doubled on each further retry, with
            jitter; a ``Retry-After`` header asking for longer is honoured.
        retry_max_delay: the longest single pause between attempts.
        headers: extra request headers (e.g. an API key for a collector). The headers that
            frame a request or manage its connection (``Host``, ``Content-Length``,
            ``Transfer-Encoding``, ``Connection``, ``Keep-Alive``, ``TE``, ``Trailer``,
            ``Upgrade``) are the transport's and refused here.
        client: an ``httpx.Client`` to send the requests through (its proxies, HTTP/2,
            auth, TLS and mTLS settings, event hooks and transport apply; its timeouts
            replace ``timeout``). The sink uses it from its own thread and never closes it.
            ``None`` (the default) uses loopsink's lean HTTP/1.1 transport (h11).
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
        batch_interval: float | None = None,
        gzip: bool = False,
        timeout: float | None = 5.0,
        retries: int = 0,
        retry_backoff: float = 0.5,
        retry_max_delay: float = 30.0,
        headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
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
        self.batch_interval = (
            None if batch_interval is None else self._non_negative("batch_interval", batch_interval)
        )
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
            if name.lower() in _TRANSPORT_HEADERS:
                raise ValueError(
                    f"headers={{{name!r}: {value!r}}} is refused: {name} frames the request "
                    f"or its connection, and the transport writes it (a second one would cut "
                    f"bodies or smuggle requests); drop it"
                    + (", and pass the server as host=" if name.lower() == "host" else "")
                )
        self._check_client(client, context)
        self.client = client
        self._authorization = _basic_authorization(credentials) if credentials else None
        self._transport: Transport | None = None
        self._closed_connections = 0  # opened by transports closed since
        # lend=0, look_every: its jobs wait on the network (see Executor's docstring)
        self._sender = Executor(
            f"loopsink HTTPHandler {host}",
            lend=HTTP_LEND,
            look_every=HTTP_LOOK_EVERY,
            look_lend=HTTP_LOOK_LEND,
            fork_wait=False,  # a child connects on its own (see _after_fork)
        )
        self._closing = threading.Event()  # set by close(): a pending retry gives up
        #: the request handed over last while a queue drives the sink (see emit_batch)
        self._in_flight: Job[list[_LateFailure]] | None = None
        self._in_flight_records = 0
        #: encoded batches held for the next request while a queue drives the sink: each
        #: the inner pieces of a body (without its framing) and the records they carry
        self._held: list[tuple[list[bytes], list[logging.LogRecord]]] = []
        self._held_records = 0
        self._last_request = float("-inf")  # when the last held request was handed over
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
    def _check_client(client: object, context: ssl.SSLContext | None) -> None:
        if client is None:
            require("h11", what="HTTPHandler", extra="http")  # the default transport's engine
            return
        httpx: Any = require("httpx", what="HTTPHandler(client=...)", extra="http")
        if isinstance(client, httpx.AsyncClient):
            raise TypeError(
                "client must be an httpx.Client, got an httpx.AsyncClient: the sink makes its "
                "requests from a thread of its own, so pass httpx.Client(...) configured the "
                "same way"
            )
        if not isinstance(client, httpx.Client):
            raise TypeError(f"client must be an httpx.Client, got {client!r}")
        if context is not None:
            raise ValueError(
                "context= and client= both configure TLS: pass the context to the client "
                "instead, httpx.Client(verify=context)"
            )

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

    def needs_context(self) -> bool:
        """Whether the records' own contexts must be entered to encode them.

        Not for this exact class with a built-in body, no filter and a context-free
        formatter: nothing then reads a context variable, so the queue hands the records
        over without their contexts and the encoder calls nothing around each one. A
        subclass (its ``mapLogRecord`` may read one), a body of the user's, a filter or
        another formatter keeps the contexts.
        """
        if type(self) is not HTTPHandler or self.filters:
            return True
        encoder = self._encoder
        if encoder is not None and type(encoder) not in _CONTEXT_FREE_BODIES:
            return True
        formatter = self.formatter
        return formatter is not None and type(formatter) not in CONTEXT_FREE_FORMATTERS

    async def emit(self, record: logging.LogRecord) -> None:
        """Send one record; a failure raises (``handle`` and the queue report it)."""
        if self._encoder is None:
            target, content = self._form(record)
            await self._sender.run(self._send_form, target, content)
            return
        pieces, done = await self._encode([record])
        if done:
            await self._sender.run(self._send_batch, pieces, done)

    async def emit_batch(self, records: Sequence[logging.LogRecord]) -> None:
        """Send records in order: one request each with the form body, batches otherwise.

        Records are encoded here, on the loop, in short slices; the requests are made by
        the sink's own thread from the bytes. Failures are reported (``handleError``, one
        count per record), never raised.

        While a queue drives the sink, a batch request is handed over and not waited for:
        the next batch is encoded while it is on its way, and waits only for it to be over
        before it is handed over in turn (one request in flight, as the collector sees
        it). A request that fails then is a late failure (:meth:`report_late_failure`);
        :meth:`flush` and :meth:`close` wait for it. With a body whose batches can be
        joined, the encoded batches are held for the next request until ``batch_interval``
        after the last one began, or ``batch_size`` records (see ``batch_interval``).
        """
        if self._encoder is None:
            forms = await self._forms(records)
            if forms:
                await self._sender.run(self._send_forms, forms)
            return
        hold = self._hold()
        if hold:
            await self._hold_batch(records, hold)
            return
        size = self.batch_size
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            began = time.monotonic()
            try:
                pieces, done = await self._encode(chunk)
            except Exception:
                self.report_batch_failure(chunk)
                continue
            if done:
                if self.linger_watched:
                    await self._wait_in_flight()
                    self._in_flight = self._sender.submit(self._send_chunk_late, pieces, done)
                    self._in_flight_records = len(done)
                else:  # called directly: over when it returns
                    await self._sender.run(self._send_chunk, pieces, done)
            if self.batch_interval and len(chunk) < size:
                # Called directly, or a body whose batches cannot be joined: pause, so
                # what arrives meanwhile makes one request (flush() waits for the pause).
                await anyio.sleep(max(0.0, began + self.batch_interval - time.monotonic()))

    def _framing(self) -> tuple[str, str, str] | None:
        """The body's framing when batches encoded apart can be joined into one body."""
        encoder = self._encoder
        if encoder is None or type(encoder).join is not HTTPBody.join:
            return None
        return encoder.framing

    def _hold(self) -> float:
        """How long a request that is not full waits for more records (0: it does not)."""
        if not self.linger_watched or self._framing() is None:
            return 0.0
        return LINGER if self.batch_interval is None else self.batch_interval

    async def _hold_batch(self, records: Sequence[logging.LogRecord], hold: float) -> None:
        """Encode ``records`` now (a record that fails is this batch's failure) and hold
        the text for the next request, which goes once it is full or ``hold`` after the
        last one began (:meth:`linger_deadline`), or at :meth:`flush`."""
        size = self.batch_size
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            try:
                pieces, done = await self._encode(chunk, framed=False)
            except Exception:
                self.report_batch_failure(chunk)
                continue
            if not done:
                continue
            if self._held_records + len(done) > size:
                await self._send_held()
            self._held.append((pieces, done))
            self._held_records += len(done)
            if self._held_records >= size or time.monotonic() >= self._last_request + hold:
                await self._send_held()

    async def _send_held(self) -> None:
        """Frame the held batches into one body and hand the request over, after the one
        before it is over (one request in flight, as the collector sees it)."""
        framing = self._framing()
        if not self._held or framing is None:
            return
        # Taken only once the request before is over: cancelled while waiting for it (a
        # queue out of time at its close), the records still count as unwritten.
        await self._wait_in_flight()
        held, self._held, self._held_records = self._held, [], 0
        start, separator, end = (part.encode("utf-8") for part in framing)
        pieces: list[bytes] = [start] if start else []
        records: list[logging.LogRecord] = []
        for index, (inner, done) in enumerate(held):
            if index and separator:
                pieces.append(separator)
            pieces.extend(inner)
            records.extend(done)
        if end:
            pieces.append(end)
        self._in_flight = self._sender.submit(self._send_chunk_late, pieces, records)
        self._in_flight_records = len(records)
        self._last_request = time.monotonic()

    def _after_fork(self) -> None:
        # The parent's kept-alive connection is the parent's: a request sent on it here
        # would interleave with the parent's, and one of them would read the other's
        # answer. The child connects on its own; its sender thread starts on first use.
        super()._after_fork()
        self._sender.discard_after_fork()
        self._closing = threading.Event()
        self._in_flight = None  # the parent's
        self._held, self._held_records = [], 0  # the parent's records: it sends them
        self._last_request = float("-inf")
        transport, self._transport = self._transport, None
        if transport is not None:
            # a plain close() of the child's copy of the descriptor sends nothing; a
            # client= keeps its pool (the caller's, as at close())
            transport.close()

    async def close(self) -> None:
        """Close the connection. The sink may still be used: it then reconnects.

        A ``client=`` stays open: it is the caller's to close.
        """
        self._closing.set()  # a retry that waits gives up now
        try:
            await self._send_held()  # one attempt, after the request before gave up
            await self._wait_in_flight()
            await self._sender.run(self._close_transport)
        finally:
            self._sender.stop()
            self._closing.clear()
            await super().close()

    async def flush(self) -> None:
        """Send what is held at once, and wait for the request on its way (see
        :meth:`emit_batch`)."""
        await super().flush()
        await self._send_held()
        await self._wait_in_flight()

    def linger_deadline(self) -> float | None:
        """While a request nobody waits for is out: when the queue's worker should look at it.

        Its failure is reported once it is taken off (:meth:`_wait_in_flight`), which the
        next batch, :meth:`flush` and :meth:`close` do. Before a quiet spell none of them
        may come for a long time, so the worker looks now and then meanwhile, and at once
        when the request is over (:meth:`write_held`).
        """
        deadline = super().linger_deadline()
        if self._held:  # the next request, which waits for more records until then
            due = self._last_request + self._hold()
            deadline = due if deadline is None else min(deadline, due)
        job = self._in_flight
        if job is None or not self.linger_watched:
            return deadline
        if job.done:
            return 0.0
        look = time.monotonic() + LATE_FAILURE_LOOK
        return look if deadline is None else min(deadline, look)

    async def write_held(self) -> None:
        """Take off a request that is over and report its failures, and send the held
        records once their wait is over (see :meth:`linger_deadline`)."""
        job = self._in_flight
        if job is not None and job.done:
            await self._wait_in_flight()
        # The worker wakes on the loop's clock, which a timer may pass a little early.
        if self._held and time.monotonic() >= self._last_request + self._hold() - HTTP_HELD_EARLY:
            await self._send_held()
        await super().write_held()

    @property
    def unwritten(self) -> int:
        """Records counted as emitted and not yet answered: held for the next request, or
        in the request on its way."""
        job = self._in_flight
        out = 0 if job is None or job.done else self._in_flight_records
        return super().unwritten + self._held_records + out

    async def _wait_in_flight(self) -> None:
        while (job := self._in_flight) is not None:
            failures = await job.wait()  # it returns its failures: it never raises
            if self._in_flight is job:  # whoever takes the job off reports them, once
                self._in_flight = None
                for exc, first, count in failures:
                    self.report_late_failure(exc, first, count)

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
        keeps it alive. With ``client=`` the client's pool owns them: it stays 0."""
        transport = self._transport
        current = transport.connections_opened if transport is not None else 0
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

    # -- inside ---------------------------------------------------------------------------

    # On the loop: records become bytes. The formatter, mapLogRecord and the body's encoder
    # run here, where every other sink formats the same record objects, never concurrently
    # with them in another thread.

    async def _forms(
        self, records: Sequence[logging.LogRecord]
    ) -> list[tuple[logging.LogRecord, str, bytes | None]]:
        forms = []
        slicer = _turns(records)
        for record in records:
            try:
                forms.append((record, *self._form(record)))
            except Exception:
                self.handleError(record)
            if slicer.due():  # a form costs tens of microseconds: look after each
                await slicer.pause()
        return forms

    def _form(self, record: logging.LogRecord) -> tuple[str, bytes | None]:
        """The stdlib's request for ``record``: its target, and its body for POST."""
        data = urlencode(in_context(record, self.mapLogRecord, record))
        if self.method == "GET":
            return self.url + ("&" if "?" in self.url else "?") + data, None
        return self.url, data.encode("utf-8")

    async def _encode(
        self, records: Sequence[logging.LogRecord], *, framed: bool = True
    ) -> tuple[list[bytes], list[logging.LogRecord]]:
        """The body for ``records`` as pieces (of about 16 KiB with ``framing``), and the
        records it carries; a record whose encoding raises goes to ``handleError``.

        Yields to the loop every slice of work; a body with ``framing`` is assembled piece
        by piece as it goes, any other joined at the end. ``framed=False`` (a body with
        ``framing`` only) leaves its start and end out: the inner pieces of a body that
        :meth:`_send_held` joins with others.
        """
        encoder = self._encoder
        assert encoder is not None
        framing = self._framing()
        separator = framing[1] if framing is not None else ""
        pieces: list[bytes] = []
        parts: list[str] = [framing[0]] if framing is not None and framed else []
        size = 0
        done: list[logging.LogRecord] = []
        slicer = _turns(records)
        contexts = self.needs_context()
        for start in range(0, len(records), ENCODE_CHECK_EVERY):
            chunk = records[start : start + ENCODE_CHECK_EVERY]
            encoded, texts = self._encode_chunk(encoder, chunk, contexts)
            if texts:
                if done and separator:
                    parts.append(separator)
                done.extend(encoded)
                if framing is None:
                    parts.extend(texts)
                else:
                    text = separator.join(texts)
                    parts.append(text)
                    size += len(text)
                    if size >= HTTP_PIECE:
                        pieces.append("".join(parts).encode("utf-8"))
                        parts, size = [], 0
            if slicer.due():
                await slicer.pause()
        if not done:
            return [], []
        if framing is not None:
            if framed:
                parts.append(framing[2])
            if parts:
                pieces.append("".join(parts).encode("utf-8"))
        else:
            pieces.append(encoder.join(done, parts).encode("utf-8"))
        return pieces, done

    def _encode_chunk(
        self, encoder: HTTPBody, records: Sequence[logging.LogRecord], contexts: bool
    ) -> tuple[Sequence[logging.LogRecord], list[str]]:
        """The records that encoded and their texts; the others go to ``handleError``."""
        try:  # most chunks never raise
            if contexts:
                return records, run_each_in_context(records, partial(encoder.encode_batch, self))
            return records, encoder.encode_batch(self, records)
        except Exception:
            pass
        encoded: list[logging.LogRecord] = []
        texts: list[str] = []
        for record in records:  # again one by one, to find the records that raise
            try:
                texts.append(in_context(record, encoder.encode_record, self, record))
            except Exception:  # noqa: PERF203 - one bad record must not cost the others
                self.handleError(record)
            else:
                encoded.append(record)
        return encoded, texts

    # In the sink's thread (see emit_batch), one job at a time: bytes become requests.

    def _get_transport(self) -> Transport:
        transport = self._transport
        if transport is None:
            if self.client is not None:
                transport = ClientTransport(self.client, self._address())
            else:
                context = self.context
                if self.secure and context is None:
                    context = ssl.create_default_context()  # the system's CAs, as http.client
                transport = H11Transport(
                    self.host,
                    ssl_context=context if self.secure else None,
                    timeout=self.timeout,
                    extra_headers=_FIXED_HEADERS,
                )
            self._transport = transport
        return transport

    def _close_transport(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            self._closed_connections += transport.connections_opened
            transport.close()

    def _address(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}"

    def _send_forms(self, forms: Sequence[tuple[logging.LogRecord, str, bytes | None]]) -> None:
        for record, target, content in forms:
            try:
                self._send_form(target, content)
            except Exception:
                self.handleError(record)
            let_the_loop_in()  # the loop may be waiting to run between two requests

    def _send_form(self, target: str, content: bytes | None) -> None:
        headers = list(self.headers.items())
        pieces = None
        if content is not None:
            headers.append(("Content-type", "application/x-www-form-urlencoded"))
            pieces = self._compress([content]) if self.gzip else [content]
            if self.gzip:
                headers.append(("Content-Encoding", "gzip"))
            headers.append(("Content-length", str(sum(map(len, pieces)))))  # the stdlib's spelling
        self._request(target, pieces, headers)

    def _send_chunk(self, pieces: list[bytes], records: list[logging.LogRecord]) -> None:
        try:
            self._send_batch(pieces, records)
        except Exception:
            self.report_batch_failure(records)

    def _send_chunk_late(
        self, pieces: list[bytes], records: list[logging.LogRecord]
    ) -> list[_LateFailure]:
        """A request nobody waits for: the queue counted its records as emitted.

        Its failures are returned, not reported here: :meth:`_wait_in_flight` reports them
        on the loop's thread, where the queue reads the sink's counters between batches.
        Reported from this thread, they could land between the queue's two reads and count
        a batch's records as both failed and emitted.
        """
        failures: list[_LateFailure] = []
        try:
            self._send_batch(pieces, records, late=failures)
        except Exception as exc:
            failures.append((exc, records[0], len(records)))
        return failures

    def _compress(self, pieces: Sequence[bytes]) -> list[bytes]:
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip container
        out = []
        for piece in pieces:
            view = memoryview(piece)
            for start in range(0, len(piece), HTTP_PIECE):
                out.append(compressor.compress(view[start : start + HTTP_PIECE]))
                let_the_loop_in()
        out.append(compressor.flush())
        return [piece for piece in out if piece]

    def _send_batch(
        self,
        pieces: list[bytes],
        records: list[logging.LogRecord],
        *,
        late: list[_LateFailure] | None = None,
    ) -> None:
        encoder = self._encoder
        assert encoder is not None
        headers = list(self.headers.items())
        headers.append(("Content-Type", encoder.content_type))
        if self.gzip:
            pieces = self._compress(pieces)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(sum(map(len, pieces)))))
        response = self._request(self.url, pieces, headers)
        for record, reason in encoder.rejected(response.status_code, response.content, records):
            if late is not None:
                late.append((HTTPDeliveryError(reason), record, 1))
            else:
                self._report_rejected(record, reason)

    def _report_rejected(self, record: logging.LogRecord, reason: str) -> None:
        try:
            raise HTTPDeliveryError(reason)
        except HTTPDeliveryError:
            self.handleError(record)

    def _request(
        self, target: str, pieces: Sequence[bytes] | None, headers: list[tuple[str, str]]
    ) -> Response:
        """Send one request, retrying as configured; raise HTTPDeliveryError when it fails."""
        transport = self._get_transport()
        if self._authorization is not None:
            headers.append(("Authorization", self._authorization))
        # The request target goes on the wire exactly as given, as http.client sends it.
        request = Request(self.method, target, headers, pieces)
        where = f"{self.method} {self._address()}{target[:80]}"
        attempt = 0
        while True:
            self._requests += 1
            outcome = self._attempt(transport, request, where)
            if isinstance(outcome, Response):
                return outcome
            reason, retry_after, failure = outcome
            try:
                if attempt >= self.retries:
                    tries = f"{attempt + 1} attempts" if attempt else "1 attempt"
                    hint = "" if self.retries else "; pass retries=N to try again"
                    raise HTTPDeliveryError(
                        f"{where} failed after {tries}: {reason}{hint}"
                    ) from failure
                delay = min(self.retry_max_delay, self.retry_backoff * 2**attempt)
                delay = delay / 2 + random.uniform(0, delay / 2)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self.retry_max_delay))
                attempt += 1
                self._retried += 1
                if self._closing.wait(delay):
                    raise HTTPDeliveryError(
                        f"{where} failed: {reason}; the sink was closed while it waited to try "
                        f"again"
                    ) from failure
            finally:
                del failure, outcome  # what failed is let go before the next attempt

    def _attempt(
        self, transport: Transport, request: Request, where: str
    ) -> Response | tuple[str, float | None, BaseException]:
        """One try: the 2xx answer, or why it failed (and how long the server asks to wait).

        An answer that must not be retried raises. What an answer held is let go here, so a
        failure keeps only its message.
        """
        try:
            response = transport.send(request, limit=_SUCCESS_LIMIT)
        except TransportError as exc:
            return _describe(exc), None, exc
        status = response.status_code
        if 200 <= status < 300:
            return response
        reason = f"the server answered {status} {response.reason_phrase}".rstrip()
        text = response.content[:800].decode("utf-8", "replace")[:200].strip()
        if text:
            reason += f": {text}"
        if status not in _RETRY_STATUSES and status < 500:
            raise HTTPDeliveryError(f"{where} failed: {reason} ({_not_retried(status, response)})")
        retry_after = _retry_after(response.header("Retry-After"))
        return reason, retry_after, HTTPDeliveryError(reason)


def _turns(records: Sequence[logging.LogRecord]) -> Turns:
    """Slices of encoding: 0.1 ms on a quiet loop, up to 1 ms after other tasks ran long
    (3 ms while the sink is late), yielding twice so a timer that fell due runs first."""
    return Turns(records, ENCODE_SLICE, ENCODE_SLICE_MAX, checkpoints=2)


#: The built-in bodies: they read the record and the handler's formatter, never a context
#: variable (fields bound with ``loopsink.bind`` reach them as record attributes).
_CONTEXT_FREE_BODIES: frozenset[type[HTTPBody]] = frozenset(
    {
        JSONArrayBody,
        NDJSONBody,
        LokiBody,
        ElasticsearchBulkBody,
        OTLPLogsBody,
        VectorBody,
        FluentBitBody,
    }
)
