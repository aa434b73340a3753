"""LogReceiver: servers that turn received frames back into LogRecords and hand them on."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import stat
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
from anyio.streams.tls import TLSStream

from .._compat import run_blocking
from .._handler import AsyncHandler, emit_holding_lock
from .._platform import require_unix_sockets
from .._tuning import RECEIVE_DATAGRAM_BURST, RECEIVE_READ, RECEIVE_SIZE, TURN
from ._frames import (
    DEFAULT_MAX_FRAME_SIZE,
    DIGEST_SIZE,
    FrameError,
    RejectReason,
    StreamDecoder,
    decode_datagram,
    make_record,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from typing_extensions import Self

__all__ = ["LogReceiver", "ReceiverStats"]

Target = AsyncHandler | logging.Handler

#: How long a TLS client may take to finish its handshake.
_HANDSHAKE_TIMEOUT = 10.0
#: Frames holding more bytes than this at once are decoded in a worker thread: a hostile
#: megabyte-sized frame then cannot hold the event loop while it is walked and refused.
_INLINE_DECODE = 2 * RECEIVE_SIZE
#: The defaults of LogReceiver's connection cap and per-frame progress timeout.
DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_FRAME_TIMEOUT = 10.0
#: At the cap, a connection idle at least this long may give its place to a new one.
_EVICTABLE_IDLE = 1.0


@dataclass(frozen=True)
class ReceiverStats:
    """A snapshot of a :class:`LogReceiver`'s counters."""

    #: Records decoded and handed to the handlers.
    records: int
    #: Frames refused, by reason (see :class:`~loopsink.receiver.RejectReason`).
    rejected: Mapping[str, int] = field(default_factory=dict)
    #: Stream connections accepted so far, and those still open.
    connections: int = 0
    open_connections: int = 0
    #: Connections closed at once because ``max_connections`` were open, and idle ones
    #: closed to make room for a new one.
    refused_connections: int = 0
    evicted_connections: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "rejected",
            MappingProxyType({k: v for k, v in sorted(self.rejected.items()) if v}),
        )

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class LogReceiver:
    """Receives log records over TCP, unix stream, UDP and unix datagram sockets.

    It reads the stdlib's wire format (what ``logging.handlers.SocketHandler`` and
    ``DatagramHandler`` send) and loopsink's options (JSON payloads, HMAC-signed frames, TLS).
    Every frame is decoded with a restricted unpickler and a size limit; a bad frame is
    counted in ``stats`` and closes its connection, and nothing else is affected.

    Records go to ``handlers``: loopsink sinks get them in batches (``emit_batch`` under the
    sink's lock, after its level and filters), stdlib handlers get ``handle(record)`` in a
    worker thread. The receiver does not close the handlers: they are yours.

    ```python
    async with LogReceiver(loopsink.StreamHandler()) as receiver:
        host, port = await receiver.listen_tcp("127.0.0.1", 9020)
        await anyio.sleep_forever()
    ```

    Args:
        *handlers: where records go: loopsink sinks or ``logging.Handler`` objects.
        hmac_key: keyword-only; accept only frames signed with this key.
        max_frame_size: keyword-only; the largest payload accepted, in bytes.
        on_reject: keyword-only; called with ``(reason, detail)`` for each rejected frame.
        max_connections: keyword-only; stream connections served at once (default: 512, or
            half the process's descriptor limit when that is lower). Beyond it a new
            connection takes the place of the one idle the longest (idle at least a second,
            no frame in progress), or is closed at once when every connection is busy.
        frame_timeout: keyword-only; seconds a frame may take from its first byte to its
            last; a slower one is rejected (``"timeout"``) and its connection closed.
    """

    def __init__(
        self,
        *handlers: Target,
        hmac_key: bytes | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        on_reject: Callable[[str, str], object] | None = None,
        max_connections: int | None = None,
        frame_timeout: float = DEFAULT_FRAME_TIMEOUT,
    ) -> None:
        for handler in handlers:
            if not isinstance(handler, (AsyncHandler, logging.Handler)):
                raise TypeError(
                    f"LogReceiver handlers must be loopsink sinks or logging.Handler objects, "
                    f"got {handler!r}"
                )
        if hmac_key is not None and (not isinstance(hmac_key, bytes) or not hmac_key):
            raise TypeError(f"hmac_key must be non-empty bytes, got {type(hmac_key).__name__}")
        if isinstance(max_frame_size, bool) or not isinstance(max_frame_size, int):
            raise TypeError(f"max_frame_size must be an int, got {max_frame_size!r}")
        if max_frame_size < 64:
            raise ValueError(f"max_frame_size must be at least 64 bytes, got {max_frame_size}")
        if max_connections is None:
            max_connections = _default_max_connections()
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise TypeError(f"max_connections must be an int, got {max_connections!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        if isinstance(frame_timeout, bool) or not isinstance(frame_timeout, (int, float)):
            raise TypeError(f"frame_timeout must be a number of seconds, got {frame_timeout!r}")
        if not 0 < frame_timeout < float("inf"):
            raise ValueError(
                f"frame_timeout must be a positive number of seconds, got {frame_timeout}"
            )
        self.max_connections = max_connections
        self.frame_timeout = float(frame_timeout)
        self._streams: dict[anyio.CancelScope, _Connection] = {}
        self._refused = 0
        self._evicted = 0
        # hostile big frames are walked one at a time, off the loop
        self._decode_limiter: anyio.CapacityLimiter | None = None
        self.handlers: tuple[Target, ...] = handlers
        self.hmac_key = hmac_key
        self.max_frame_size = max_frame_size
        #: Called with (reason, detail) for every rejected frame, e.g. to print a warning.
        self.on_reject = on_reject
        self._task_group: anyio.abc.TaskGroup | None = None
        self._records = 0
        self._rejected: dict[str, int] = {}
        self._connections = 0
        self._open = 0
        self._progress: anyio.Event | None = None
        self._cleanup: list[str] = []
        self._scopes: set[anyio.CancelScope] = set()
        self._servers_done: anyio.Event | None = None
        self._stopping = False
        #: The addresses bound so far, in the order the listen_* calls were made.
        self.addresses: list[Any] = []

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            return None
        try:
            await self._stop_servers()
        except BaseException:
            await task_group.__aexit__(*sys.exc_info())
            raise
        return await task_group.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Stop listening and close every connection (the handlers stay open).

        May be called inside the ``async with`` block, e.g. to take the receiver down while
        senders keep logging; leaving the block then does nothing more.
        """
        await self._stop_servers()

    async def _stop_servers(self) -> None:
        self._stopping = True
        for scope in list(self._scopes):
            scope.cancel()
        with anyio.CancelScope(shield=True):
            while self._scopes:
                self._servers_done = anyio.Event()
                await self._servers_done.wait()
            if self._cleanup:
                await run_blocking(self._remove_socket_files)

    async def _run_server(
        self,
        serve: Callable[..., Awaitable[None]],
        *args: Any,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            task_status.started()
            try:
                await serve(*args)
            finally:
                self._scopes.discard(scope)
                if not self._scopes and self._servers_done is not None:
                    self._servers_done.set()

    def _remove_socket_files(self) -> None:
        for path in self._cleanup:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._cleanup.clear()

    def _group(self, what: str) -> anyio.abc.TaskGroup:
        if self._task_group is None or self._stopping:
            raise RuntimeError(
                f"LogReceiver.{what}() needs the running receiver: use 'async with receiver:'"
            )
        return self._task_group

    # -- listeners --------------------------------------------------------------------------

    async def listen_tcp(
        self, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        """Accept TCP connections on ``host:port`` (0 picks a free port); return the address.

        With ``ssl_context`` (a server-side context) the connections speak TLS.
        """
        group = self._group("listen_tcp")
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        raw = listener.extra(anyio.abc.SocketAttribute.raw_socket)
        bound = raw.getsockname()
        address = (str(bound[0]), int(bound[1]))
        await group.start(self._run_server, self._serve_listener, listener, ssl_context)
        self.addresses.append(address)
        return address

    async def listen_unix(self, path: str | os.PathLike[str]) -> str:
        """Accept unix stream connections on the socket file ``path``; return the path."""
        require_unix_sockets("LogReceiver.listen_unix")
        group = self._group("listen_unix")
        path = os.fspath(path)
        # bound in a worker thread: binding touches the file system
        raw = await run_blocking(_bind_unix, path, socket.SOCK_STREAM)
        listener = await anyio.abc.SocketListener.from_socket(raw)
        self._cleanup.append(path)
        await group.start(self._run_server, self._serve_listener, listener, None)
        self.addresses.append(path)
        return path

    async def listen_udp(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Receive UDP datagrams on ``host:port`` (0 picks a free port); return the address."""
        group = self._group("listen_udp")
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, sockaddr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            _widen_receive_buffer(sock)
            sock.bind(sockaddr)
        except BaseException:
            sock.close()
            raise
        bound = sock.getsockname()
        address = (str(bound[0]), int(bound[1]))
        await group.start(self._run_server, self._serve_datagrams, sock, 65_535)
        self.addresses.append(address)
        return address

    async def listen_unix_datagram(self, path: str | os.PathLike[str]) -> str:
        """Receive unix datagrams on the socket file ``path``; return the path."""
        require_unix_sockets("LogReceiver.listen_unix_datagram")
        group = self._group("listen_unix_datagram")
        path = os.fspath(path)
        sock = await run_blocking(_bind_unix, path, socket.SOCK_DGRAM)
        self._cleanup.append(path)
        await group.start(
            self._run_server, self._serve_datagrams, sock, self.max_frame_size + DIGEST_SIZE + 4
        )
        self.addresses.append(path)
        return path

    # -- serving ----------------------------------------------------------------------------

    async def _serve_listener(
        self, listener: anyio.abc.Listener[Any], ssl_context: ssl.SSLContext | None
    ) -> None:
        # a TCP listener on a name may be several sockets (IPv4 and IPv6): accept on each
        sockets: list[Any] = list(getattr(listener, "listeners", [listener]))
        async with listener, anyio.create_task_group() as connections:
            for sock in sockets:
                connections.start_soon(self._accept, sock, ssl_context, connections)

    async def _accept(
        self,
        listener: anyio.abc.SocketListener,
        ssl_context: ssl.SSLContext | None,
        connections: anyio.abc.TaskGroup,
    ) -> None:
        # Accepted by hand rather than with listener.accept(): on asyncio that is
        # loop.sock_accept, whose reader callback, once queued, sets the result of a future
        # that stopping the receiver has just cancelled, and the loop prints an
        # InvalidStateError traceback (and loses the connection). wait_readable tolerates it.
        raw = listener.extra(anyio.abc.SocketAttribute.raw_socket)
        wrap = (
            anyio.abc.UNIXSocketStream.from_socket
            if raw.family == _AF_UNIX
            else anyio.abc.SocketStream.from_socket
        )
        while True:
            try:
                await anyio.wait_readable(raw)
                conn, _ = raw.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue  # the peer gave up before we took it
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError as exc:  # EMFILE and alike: keep serving the open connections
                _warn(f"loopsink receiver: accept() failed ({exc}); retrying in 0.1 s")
                await anyio.sleep(0.1)
                continue
            if self._open >= self.max_connections and not self._make_room():
                self._refused += 1
                _close_now(conn)
                continue
            try:
                conn.setblocking(False)
                if conn.family != _AF_UNIX:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                stream = await wrap(conn)
            except (OSError, ValueError):  # reset before it could be wrapped
                conn.close()
                continue
            except BaseException:
                conn.close()
                raise
            connections.start_soon(self._serve_stream, ssl_context, stream)

    def _make_room(self) -> bool:
        """Close the connection idle the longest, if one has been idle long enough."""
        now = anyio.current_time()
        idlest: tuple[float, anyio.CancelScope] | None = None
        for scope, conn in self._streams.items():
            if conn.idle_since is not None and (idlest is None or conn.idle_since < idlest[0]):
                idlest = (conn.idle_since, scope)
        if idlest is None or now - idlest[0] < _EVICTABLE_IDLE:
            return False
        del self._streams[idlest[1]]
        idlest[1].cancel()
        self._evicted += 1
        self._open -= 1  # counted out now: its task ends on its next turn
        return True

    async def _serve_stream(
        self, ssl_context: ssl.SSLContext | None, stream: anyio.abc.ByteStream
    ) -> None:
        self._connections += 1
        self._open += 1
        conn = _Connection(anyio.current_time())
        try:
            with anyio.CancelScope() as scope:
                self._streams[scope] = conn
                await self._serve_one(ssl_context, stream, conn)
        except Exception:  # nothing one connection does may take the receiver down
            _warn("loopsink receiver: a connection failed:\n" + _short_traceback())
        finally:
            if self._streams.pop(scope, None) is not None:
                self._open -= 1
            await anyio.aclose_forcefully(stream)

    async def _serve_one(
        self, ssl_context: ssl.SSLContext | None, stream: anyio.abc.ByteStream, conn: _Connection
    ) -> None:
        if ssl_context is not None:
            try:
                with anyio.fail_after(_HANDSHAKE_TIMEOUT):
                    stream = await TLSStream.wrap(
                        stream,
                        server_side=True,
                        ssl_context=ssl_context,
                        standard_compatible=False,
                    )
            except (OSError, TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream):
                self._reject(RejectReason.TLS, "TLS handshake failed")
                return
        await self._read_frames(stream, conn)

    async def _read_frames(self, stream: anyio.abc.ByteStream, conn: _Connection) -> None:
        decoder = StreamDecoder(max_frame_size=self.max_frame_size, hmac_key=self.hmac_key)
        deadline = float("inf")
        while True:
            try:
                if decoder.pending:
                    conn.idle_since = None
                    if deadline == float("inf"):
                        deadline = anyio.current_time() + self.frame_timeout
                    with anyio.CancelScope(deadline=deadline) as timer:
                        data = await stream.receive(RECEIVE_READ)
                    if timer.cancelled_caught:
                        self._reject(
                            RejectReason.TIMEOUT,
                            f"a frame was not complete {self.frame_timeout:g} s after its "
                            f"first byte ({decoder.pending} bytes held)",
                        )
                        return
                else:
                    deadline = float("inf")
                    conn.idle_since = anyio.current_time()
                    data = await stream.receive(RECEIVE_READ)
            except anyio.EndOfStream:
                if decoder.pending:
                    self._reject(RejectReason.TRUNCATED, "connection ended inside a frame")
                return
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                if decoder.pending:
                    self._reject(RejectReason.TRUNCATED, "connection broke inside a frame")
                return
            if not await self._decode_read(decoder, data):
                return

    async def _decode_read(self, decoder: StreamDecoder, data: bytes) -> bool:
        """Decode one read in steps of ``RECEIVE_SIZE`` bytes, handing each step's records
        on; ``False`` once a frame was refused (the connection then ends).

        A read takes whatever the connection holds, many steps under a flood: the other
        tasks of the loop get a turn once ``TURN`` has passed since the last one, not at
        every step, as a queue's worker does between batches.
        """
        view = memoryview(data)
        clock = time.perf_counter
        turn_ends = clock() + TURN
        for start in range(0, len(view), RECEIVE_SIZE):
            if start and clock() > turn_ends:
                await anyio.lowlevel.checkpoint()
                turn_ends = clock() + TURN
            step = view[start : start + RECEIVE_SIZE]
            if len(step) + decoder.pending > _INLINE_DECODE and decoder.complete(step):
                dicts = await anyio.to_thread.run_sync(decoder.feed, step, limiter=self._limiter())
            else:
                dicts = decoder.feed(step)
            if dicts:
                await self._dispatch([make_record(d) for d in dicts])
            if decoder.error is not None:
                self._reject(decoder.error.reason, str(decoder.error))
                return False
        return True

    async def _serve_datagrams(self, sock: socket.socket, bufsize: int) -> None:
        with sock:
            while True:
                await anyio.wait_readable(sock)
                records: list[logging.LogRecord] = []
                for _ in range(RECEIVE_DATAGRAM_BURST):
                    try:
                        packet = _receive_datagram(sock, bufsize)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # e.g. ECONNREFUSED queued on the socket: nothing to read
                        continue
                    if packet is None:
                        self._reject(RejectReason.OVERSIZED, f"datagram above {bufsize} bytes")
                        continue
                    try:
                        if len(packet) > _INLINE_DECODE:
                            data = await anyio.to_thread.run_sync(
                                self._decode_datagram, packet, limiter=self._limiter()
                            )
                        else:
                            data = self._decode_datagram(packet)
                        records.append(make_record(data))
                    except FrameError as exc:
                        self._reject(exc.reason, str(exc))
                    except Exception:  # a bug here must not stop the datagrams after it
                        self._reject(RejectReason.INVALID, "decoding failed: " + _short_traceback())
                if records:
                    await self._dispatch(records)

    def _decode_datagram(self, packet: bytes) -> dict[str, Any]:
        return decode_datagram(packet, max_frame_size=self.max_frame_size, hmac_key=self.hmac_key)

    def _limiter(self) -> anyio.CapacityLimiter:
        if self._decode_limiter is None:
            self._decode_limiter = anyio.CapacityLimiter(1)
        return self._decode_limiter

    async def _dispatch(self, records: Sequence[logging.LogRecord]) -> None:
        try:
            await self._hand_on(records)
        finally:  # cut off at shutdown, they were handed on all the same
            self._records += len(records)
            self._notify()

    async def _hand_on(self, records: Sequence[logging.LogRecord]) -> None:
        for handler in self.handlers:
            if isinstance(handler, AsyncHandler):
                try:  # a filter of the user's may raise: that must not end the connection
                    accepted = [r for r in map(handler.accepts, records) if r is not None]
                except Exception:
                    traceback.print_exc()
                    continue
                if not accepted:
                    continue
                await emit_holding_lock(handler, accepted, handler.io_lock())
            else:
                try:
                    await run_blocking(_handle_all, handler, records)
                except Exception:  # not the handler's own errors: it reports those itself
                    traceback.print_exc()

    # -- counters ---------------------------------------------------------------------------

    def _reject(self, reason: str, detail: str) -> None:
        self._rejected[reason] = self._rejected.get(reason, 0) + 1
        if self.on_reject is not None:
            try:
                self.on_reject(reason, detail)
            except Exception:  # a broken callback must not take the server down
                traceback.print_exc()
        self._notify()

    def _notify(self) -> None:
        event, self._progress = self._progress, None
        if event is not None:
            event.set()

    @property
    def stats(self) -> ReceiverStats:
        return ReceiverStats(
            records=self._records,
            rejected=dict(self._rejected),
            connections=self._connections,
            open_connections=self._open,
            refused_connections=self._refused,
            evicted_connections=self._evicted,
        )

    async def wait_received(self, records: int, *, rejected: int = 0) -> ReceiverStats:
        """Wait until at least ``records`` records were handed on and ``rejected`` frames refused.

        Bound the wait with ``anyio.fail_after``.
        """
        while self._records < records or sum(self._rejected.values()) < rejected:
            if self._progress is None:
                self._progress = anyio.Event()
            await self._progress.wait()
        return self.stats

    def __repr__(self) -> str:
        return f"<LogReceiver {self.addresses!r} records={self._records}>"


def _default_max_connections() -> int:
    # Past the descriptor limit accept() fails for everyone: stay well below it.
    try:
        import resource  # not on Windows
    except ImportError:
        return DEFAULT_MAX_CONNECTIONS
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return DEFAULT_MAX_CONNECTIONS
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return DEFAULT_MAX_CONNECTIONS
    return max(8, min(DEFAULT_MAX_CONNECTIONS, soft // 2))


@dataclass
class _Connection:
    #: When the connection last went idle (no frame in progress); None inside a frame.
    idle_since: float | None


def _close_now(conn: socket.socket) -> None:
    """Close an accepted socket without reading it: the peer sees its connection end."""
    with contextlib.suppress(OSError):
        conn.close()


def _short_traceback() -> str:
    lines = traceback.format_exc().splitlines()
    return "\n".join(line[:200] for line in lines[-6:])


def _warn(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


#: None where the platform has no unix sockets (Windows); compared with, never required.
_AF_UNIX = getattr(socket, "AF_UNIX", None)


def _receive_datagram(sock: socket.socket, bufsize: int) -> bytes | None:
    """One datagram of at most ``bufsize`` bytes, or None when it was longer (and cut).

    ``recvmsg`` reports the cut with ``MSG_TRUNC``; where there is no ``recvmsg`` (Windows)
    one byte more is asked for, so that a longer datagram shows by its length, and Windows'
    ``WSAEMSGSIZE`` (the datagram did not fit even that) counts as cut too.
    """
    if hasattr(sock, "recvmsg"):
        packet, _, flags, _ = sock.recvmsg(bufsize)
        return None if flags & getattr(socket, "MSG_TRUNC", 0) else packet
    try:
        packet = sock.recv(bufsize + 1)
    except OSError as exc:
        if getattr(exc, "winerror", None) == _WSAEMSGSIZE:
            return None
        raise
    return None if len(packet) > bufsize else packet


#: Windows' error for a datagram larger than the buffer given to recv().
_WSAEMSGSIZE = 10040


def _bind_unix(path: str, kind: int) -> socket.socket:
    """A non-blocking unix socket bound at ``path`` (listening, for a stream socket).

    A socket file left behind by an earlier run is replaced, as anyio's listeners do; any
    other file at ``path`` is an error.
    """
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, kind)
    try:
        sock.setblocking(False)
        sock.bind(path)
        if kind == socket.SOCK_STREAM:
            sock.listen(socket.SOMAXCONN)
    except BaseException:
        sock.close()
        raise
    return sock


def _handle_all(handler: logging.Handler, records: Iterable[logging.LogRecord]) -> None:
    for record in records:
        handler.handle(record)


#: What a datagram receiver asks the kernel to buffer. A burst of records arrives faster
#: than one loop turn reads them, and UDP drops what does not fit; the kernel caps the
#: request at net.core.rmem_max.
_DATAGRAM_RECEIVE_BUFFER = 4 * 1024 * 1024


def _widen_receive_buffer(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _DATAGRAM_RECEIVE_BUFFER)
    except OSError:  # a platform that refuses: keep its default
        pass
