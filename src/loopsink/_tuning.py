"""Every tuning constant of the package, in one place.

A tuning constant trades one kind of speed for another (the loop's lag against the records
a pass carries, CPU per record against latency, memory against trips to a thread). None of
them changes what a sink writes, only when and in what pieces. Each one's comment says
what it trades and which ``make bench`` row guards it, written as ``section: row`` as the
tables in ``docs/performance.md`` print them; change a value only with that row measured
before and after in one run. The few timing constants at the end are no speed trade-off
and no bench row measures them: their comments name the tests that pin them.

Not here, on purpose: correctness limits, protocol constants and security bounds stay next
to the code they protect, because changing them changes behaviour, not speed. Among them:
UDP payload limits and digest sizes (``handlers._socket``), the HTTP answer limits and
``sendmsg``'s buffer cap (``handlers._http``, ``handlers._http_transport``), resend ledgers
(``handlers._connection``), timeouts of TLS probes and closes (``handlers._syslog``,
``handlers._syslogtransport``), logrotate's race (``handlers._watched``), the receiver's
frame, connection and decoding bounds (``receiver._frames``, ``receiver._server``), and the
size bounds of caches (``_fastformat``, ``handlers._http``), which keep memory bounded
whatever the input.

Modules import these names (``from ._tuning import X``, possibly ``as`` their old private
name): a module global costs the same to read in a per-record loop either way.
"""

from __future__ import annotations

__all__: list[str] = []

# -- the queue and its lanes (_queue.LogQueue, _lane.Lane) ----------------------------------

#: How long a sink's worker may run batch after batch before it lets other tasks run (and
#: a receiver decode step after step of one read). Trades the loop's lag against task
#: switches per record.
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT, a burst that never
#: yields" (fewer switches) and "A FastAPI service under uvicorn (wrk): loopsink via the lifespan
#: helper: p99" (the loop's lag under a service's load).
TURN = 0.0005

#: After a small batch (see TRICKLE), the worker looks for records again this much later
#: instead of being woken by the next put(): one pass of the worker per millisecond, not
#: one per record, for up to this much more latency before a record reaches its sink.
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT, yield after every
#: record" and "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT, yield every 10".
POLL = 0.001

#: Batches smaller than this make the worker poll (see POLL); larger ones wake it as they
#: come. Too large, and batches outgrow a formatting slice and the sink falls behind
#: (records dropped: the end-to-end rows verify every line).
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT" and "End-to-end to a
#: file: loopsink FileHandler, BASIC_FORMAT, yield after every record".
TRICKLE = 32

#: Intake items a lane wraps into records (``wrap_pairs``) between two looks at the clock:
#: fewer clock reads against a longer step before the worker can yield after TURN.
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT, a burst that never
#: yields" and "A FastAPI service under uvicorn (wrk): loopsink via the lifespan
#: helper: p99".
WRAP_SLICE = 256

#: Records from other threads wake the queue's worker this long after the first of them,
#: and a worker fed by other threads polls this often (instead of POLL): the records of
#: every request in the window share one pass of the loop, for this much more latency.
#: flush(), close() and an intake half full still wake the worker at once. Each gathering
#: costs the queue's thread a wake-up and a hand-over to the sink's thread whatever it
#: holds, which on a virtual machine outweighs formatting a few dozen records.
#: Guards: "Sync thread, 2 records per request between network waits: process CPU:
#: loopsink start_in_thread + FileHandler" (bench_sync.py), and the gunicorn sync workers'
#: requests/s against the stdlib's (bench_gunicorn.py).
SYNC_GATHER = 0.1

# -- the I/O thread of a sink (_executor.Executor) ------------------------------------------

#: How long the loop's thread lends the GIL to a job it hands to an idle I/O thread: a
#: quick write ends within it (no fight for the GIL later), a stalled one costs the loop
#: this much once.
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT" (and every loopsink
#: row of that section).
LEND = 0.0005

#: While a job that outlived its lend is still running and the loop never idles, the loop's
#: thread lends the GIL again for at most this long, once per WAKE_LEND_EVERY. Such a loop
#: releases and retakes the GIL at every pass, which defeats CPython's switch interval: the
#: job's thread, back from a system call, would otherwise wait for the GIL as long as the
#: load lasts. Trades a little of a busy loop's time while a job is out against how soon
#: the job ends under load.
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT" (the sink keeps up)
#: and "A FastAPI service under uvicorn (wrk): loopsink via the lifespan helper: p99" (the
#: loop's lag under a service's load).
WAKE_LEND = 0.0001
#: How often the loop lends (see WAKE_LEND) while a job's thread takes the lends: more
#: often, and a job that needs the GIL after each of many system calls ends sooner under
#: load, for more of the loop's time.
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT" and "A FastAPI service
#: under uvicorn (wrk): loopsink via the lifespan helper: p99".
WAKE_LEND_EVERY = 0.002
#: A lend the job's thread did not run in (it is stalled in a system call, not waiting for
#: the GIL) doubles the time to the next one, up to this: a stall under load costs the loop
#: a few lends, not one per WAKE_LEND_EVERY (on a busy machine, a lend keeps the loop's
#: thread off its CPU for longer than WAKE_LEND).
#: Guards: "A FastAPI service under uvicorn (wrk): loopsink via the lifespan helper: p99".
WAKE_LEND_EVERY_MAX = 0.032
#: Where the OS does not count a thread's waits (not Linux), a loop counts as never idle
#: (see WAKE_LEND) when its thread ran for at least this share of the time since the last
#: look: one that idled let go of the GIL long enough meanwhile.
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT" and "A FastAPI service
#: under uvicorn (wrk): loopsink via the lifespan helper: p99".
WAKE_LEND_BUSY = 0.5

#: The HTTP sink's executor lends nothing (a request is not over within a lend) and the
#: awaiting task looks for the outcome on this timer instead of being woken from the
#: thread: a wake-up from outside the loop can make its next timer a millisecond late.
#: Guards: "HTTP: event-loop lag while shipping to a 20 ms server: loopsink HTTPHandler,
#: batched NDJSON, steady 10 records/ms: lag p99" (and the other loopsink rows there).
HTTP_LEND = 0.0
HTTP_LOOK_EVERY = 0.001
#: At each look that finds a request still running and the loop never idle since the last
#: look, the loop's thread lends the GIL for at most this long: on such a loop the sink's
#: thread, back from the network, would otherwise wait up to seconds for the GIL (the loop
#: releases and retakes it at every pass, which defeats CPython's switch interval). Trades
#: at most this much of the loop per look against the sink keeping up with a busy service.
#: Guards: "An aiohttp service with file, syslog and HTTP sinks (wrk): loopsink file +
#: SysLogHandler UDP + HTTPHandler NDJSON: requests/s" (nothing may be lost at the
#: collector) and "HTTP: event-loop lag while shipping to a 20 ms server: loopsink
#: HTTPHandler, batched NDJSON, steady 10 records/ms: lag p99".
HTTP_LOOK_LEND = 0.0001

# -- write-behind (_writebehind.WriteBehind) ------------------------------------------------

#: How long formatted text may wait before it is written: one hand-over to the I/O thread
#: (two thread wake-ups) serves every batch of that window, for this much more latency to
#: the file and this much more text that a hard kill of the process loses. A lane also
#: holds a few records at most this long for a sink's held output (Lane.holds).
#: The socket, datagram and syslog sinks hold their frames as long (one send, or one burst
#: of datagrams, per linger where records trickle in), and a QueueListener reading a
#: blocking queue gathers a burst as long (one wake-up of the loop per linger).
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT, yield every 10" (and
#: the section's other rows), "Many sinks with one format: 4 file sinks: records logged
#: in 1 s", and "CPU per record: each sink to a loopback receiver: SocketHandler: records
#: per CPU-second".
LINGER = 0.02
#: The syslog sink sends the frames it holds for a linger once they reach this many bytes,
#: as the socket sink does at its max_write_size (the same 64 KiB): larger held writes
#: left the daemon idle while the loop worked, then busy while it waited.
#: Guards: "SysLogHandler over TCP: loopsink SysLogHandler (TCP, install + bridge)".
HELD_FRAMES_BYTES = 64 * 1024
#: The datagram sinks (DatagramHandler, SysLogHandler on UDP or a unix datagram socket)
#: send the datagrams they hold for a linger once this many wait (or HELD_FRAMES_BYTES).
#: Each datagram is a send of its own and a held burst goes out in one step of the loop:
#: this many keep that step about as short as a serialising slice, and the burst small
#: enough for the receiver's socket buffer.
#: Guards: "CPU per record: each sink to a loopback receiver: SysLogHandler UDP: records per
#: CPU-second" and "SysLogHandler over UDP: loopsink SysLogHandler (UDP, install + bridge)".
#: Test: tests/handlers/test_syslog.py test_held_datagrams_go_once_they_fill_a_burst.
HELD_DATAGRAMS = 48
#: How much text is written at once without waiting for LINGER: larger writes, fewer
#: hand-overs, against a longer job on the I/O thread.
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT".
PUSH_CHARS = 256 * 1024
#: How much text may wait while a write is still running before the sink waits for it:
#: memory against stalling the sink's worker behind a slow write.
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT, a burst that never
#: yields".
MAX_HELD_CHARS = 8 * 1024 * 1024

# -- formatting on the loop (_turns.formatting: format_lines and every sink that formats) ---

#: How long a sink formats on the loop before it yields: the loop's lag against the
#: checkpoints per batch (too short, and a sink falls behind an app with long passes).
#: Guards: "A FastAPI service under uvicorn (wrk): loopsink via the lifespan
#: helper: p99", "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT, yield every 10",
#: "RotatingFileHandler, rollover every 1 MB: loopsink RotatingFileHandler (install
#: + bridge)" and "SysLogHandler over TCP: loopsink SysLogHandler (TCP, install + bridge)".
FORMAT_SLICE_SECONDS = 0.0002
#: The longest slice: after other tasks ran longer than FORMAT_SLICE_SECONDS, formatting
#: runs about as long as they did, up to this, so a busy app cannot leave its sinks behind.
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT, yield every 10" and
#: "A FastAPI service under uvicorn (wrk): loopsink via the lifespan
#: helper: p99".
FORMAT_SLICE_MAX = 0.001
#: Records formatted between two looks at the clock: fewer clock reads against a slice's
#: overrun (a formatter that costs much a record overruns by up to this many records).
#: Guards: "End-to-end to a file: loopsink FileHandler, BASIC_FORMAT".
FORMAT_CHECK_EVERY = 64

#: The most texts one group of sinks that share a formatter keeps for its slower members
#: (_sharedtexts.SharedTexts; a text goes as soon as every member took it, so this bounds
#: only what members that dropped the record never take): memory and records kept alive
#: against a sink that falls more than this many records behind formatting again by itself,
#: and so falling further behind.
#: Guards: "Many sinks with one format: 4 file sinks: lag p99", "Many sinks with one
#: format: 8 file sinks: lag p99" and "An aiohttp service with file, syslog and HTTP sinks
#: (wrk): loopsink file + SysLogHandler UDP + HTTPHandler NDJSON: requests/s".
SHARED_TEXTS_BOUND = 8192

# -- turns of a late sink (_turns.Turns: the HTTP and socket sinks' encoding) ---------------

#: A batch whose first record was logged longer ago than this is late: the sink is losing
#: the race against a loop that never idles (see LATE_SLICE_MAX). Above what a batch
#: waits while the sink keeps up (a request out to a slow collector), far below what fills
#: a queue's capacity at a service's rate (10,000 records at 10 records/ms: 1 s).
#: Guards: "An aiohttp service with file, syslog and HTTP sinks (wrk): loopsink file +
#: SysLogHandler UDP + HTTPHandler NDJSON: requests/s" (nothing may be lost at the collector)
#: and "HTTP: event-loop lag while shipping to a 20 ms server: loopsink HTTPHandler, batched
#: NDJSON, steady 10 records/ms: lag max" (a sink that keeps up never counts as late).
LATE_AFTER = 0.25
#: The longest slice of a late batch (see LATE_AFTER): the loop's lag while the sink catches
#: up against records dropped. At ENCODE_SLICE_MAX the HTTP sink's share of a saturated
#: aiohttp service's loop stayed below what the service logged.
#: Guards: "An aiohttp service with file, syslog and HTTP sinks (wrk): loopsink file +
#: SysLogHandler UDP + HTTPHandler NDJSON: requests/s" (nothing may be lost at the
#: collector) and "An aiohttp service with file, syslog and HTTP sinks (wrk): loopsink file +
#: SysLogHandler UDP + HTTPHandler NDJSON: p99".
LATE_SLICE_MAX = 0.003

# -- the socket sink (handlers._socket) -----------------------------------------------------

#: How long the sink serialises (pickles, signs) on the loop before it yields: a waiting
#: task can be late by about two slices.
#: Guards: "SocketHandler: event-loop lag while the receiver is down: loopsink, receiver
#: back, backlog being sent: p99" and "SocketHandler to a receiver on loopback: loopsink
#: SocketHandler → loopsink receiver".
SERIALIZE_SLICE = 0.0001
#: The longest serialising slice, after other tasks ran longer than SERIALIZE_SLICE: a
#: fixed 0.1 ms slice against a busy service's passes of milliseconds fell behind and
#: dropped records. Guards: "SocketHandler to a receiver on loopback: loopsink
#: SocketHandler → loopsink receiver" and "SocketHandler: event-loop lag while the
#: receiver is down: loopsink, receiver back, backlog being sent: p99".
SERIALIZE_SLICE_MAX = 0.001
#: A batch larger than this yields once before it is serialised, so the queue's own work
#: on a big batch and the first slice are not one step.
#: Guards: "SocketHandler: event-loop lag while the receiver is down: loopsink, receiver
#: back, backlog being sent: max".
SERIALIZE_YIELD_FIRST = 64

# -- the HTTP sink (handlers._http) ---------------------------------------------------------

#: How long the sink encodes a body on the loop before it yields (half a file sink's
#: FORMAT_SLICE_SECONDS: JSON costs several microseconds a record).
#: Guards: "HTTP: event-loop lag while shipping to a 20 ms server: loopsink HTTPHandler,
#: batched NDJSON: lag p99".
ENCODE_SLICE = 0.0001
#: The longest encoding slice, after other tasks ran longer than ENCODE_SLICE: a fixed short
#: slice on a busy service's loop falls behind and drops records.
#: Guards: "An aiohttp service with file, syslog and HTTP sinks (wrk): loopsink file +
#: SysLogHandler UDP + HTTPHandler NDJSON: requests/s" (nothing may be lost at the collector)
#: and "HTTP: event-loop lag while shipping to a 20 ms server: loopsink
#: HTTPHandler, batched NDJSON, steady 10 records/ms: lag max".
ENCODE_SLICE_MAX = 0.001
#: Records encoded in one call of the body's ``encode_batch``, between two looks at the
#: clock: the fixed cost of a call (finding the formatter, its shared texts) against how far
#: a slice can overrun.
#: Guards: "CPU per record: each sink to a loopback receiver: HTTPHandler NDJSON: records per
#: CPU-second" and "HTTP: event-loop lag while shipping to a 20 ms server: loopsink
#: HTTPHandler, batched NDJSON: lag p99".
ENCODE_CHECK_EVERY = 16
#: Bodies are built, compressed and written in pieces of about this size, the GIL let go
#: between them: page faults of a large buffer against calls per body.
#: Guards: "CPU per record: each sink to a loopback receiver: HTTPHandler NDJSON: records per
#: CPU-second" and "HTTP: event-loop lag while shipping to a 20 ms server: loopsink
#: HTTPHandler, batched NDJSON: lag max".
HTTP_PIECE = 16 * 1024

# -- the receiver (receiver._server.LogReceiver) --------------------------------------------

#: Datagrams read per wake-up before records are handed on: fewer passes against a longer
#: step on the receiver's loop.
#: Guards: no bench row reads datagrams through LogReceiver (the SysLogHandler UDP rows use
#: SyslogReceiver, which reads its own way). Test: tests/test_receiver.py
#: test_datagrams_bad_ones_counted_good_ones_delivered.
RECEIVE_DATAGRAM_BURST = 32
#: The most bytes one read takes off a stream: what asyncio's transport reads at once.
#: A read under a flood holds many steps (RECEIVE_SIZE), decoded taking turns (TURN); a
#: smaller read costs a pass of the loop per read, and with anyio a copy of what is left.
#: Guards: "SocketHandler to a receiver on loopback: loopsink SocketHandler → loopsink
#: receiver". Test: tests/test_receiver.py test_a_large_read_is_decoded_taking_turns.
RECEIVE_READ = 262_144
#: Bytes of frames decoded in one step, and handed on as one batch: about 30 records, a
#: few tenths of a millisecond of decoding.
#: Guards: "SocketHandler to a receiver on loopback: loopsink SocketHandler → loopsink
#: receiver". Test: tests/test_receiver.py test_a_large_read_is_decoded_taking_turns.
RECEIVE_SIZE = 16_384
#: Shapes of record dicts (keys, then values' types) the receiver remembers as checked
#: (receiver._frames.validate_record_dict): a dict of a known shape skips the per-key
#: checks. Senders send a few shapes; one that varies them only empties the set.
#: Guards: "SocketHandler to a receiver on loopback: loopsink SocketHandler → loopsink
#: receiver". Test: tests/test_receiver_hostile.py
#: test_shapes_remembered_by_the_receiver_are_bounded.
PASSED_SHAPES_BOUND = 256
#: A shape whose keys hold more characters than this is never kept: the remembered shapes
#: keep at most about half a megabyte of a sender's keys alive. Test:
#: tests/test_receiver_hostile.py test_shapes_remembered_by_the_receiver_are_bounded.
PASSED_SHAPE_KEY_CHARS = 2048

# -- timing constants that are no speed trade-off (no bench row; the tests named pin them) --

#: After records were dropped, the summary waits this long without new drops, so one burst
#: of pressure gives one summary. Tests: tests/test_queue.py
#: test_drop_newest_counts_exactly_and_summarises_once, tests/test_writer.py
#: test_the_drop_summary_arrives_while_records_keep_flowing.
SUMMARY_QUIET_PERIOD = 0.05
#: While an HTTP request that nobody waits for is out, the sink's queue worker looks at it
#: this often, so that its failure is reported soon even if no batch or flush follows (one
#: wake of the loop per period while requests are out). Test:
#: tests/handlers/test_http.py test_a_late_failure_is_reported_without_a_flush_or_a_later_batch.
LATE_FAILURE_LOOK = 0.05
#: The HTTP sink sends the records it holds for the next request (see LINGER) when the
#: queue's worker wakes this much before their wait is over, or later: a timer of the loop
#: may fire up to its clock's resolution early, and the worker would wake again at once.
#: Test: tests/handlers/test_http.py test_held_records_go_when_their_wait_is_over.
HTTP_HELD_EARLY = 0.001
#: How long a thread blocked by ``overflow="block"`` sleeps between checks if a wake-up is
#: missed (it should not be). Test: tests/test_queue.py
#: test_block_makes_foreign_threads_wait_and_loses_nothing.
BLOCK_RECHECK = 0.25
#: The least time a sink whose worker hit the close deadline gets to close itself.
#: Test: tests/test_queue.py test_aclose_timeout_counts_the_grace_for_a_hanging_close.
CLOSE_GRACE = 0.1
#: How long a QueueListener's thread waits in a blocking ``get`` before its task checks for
#: cancellation (an idle listener's one thread hop per period, against how soon it stops).
#: Test: tests/handlers/test_queuehandler.py test_cancel_stops_an_idle_listener_on_a_blocking_queue.
LISTENER_POLL = 0.2
#: The most items a QueueListener takes from its queue (and hands to each handler) at once.
#: Test: tests/handlers/test_queuehandler.py test_listener_async_with_and_stop_drains_everything.
LISTENER_BURST = 1024
#: How long a fork waits, at most, for the sinks' I/O threads to finish the job each is
#: running (a write the parent's thread was inside holds its stream's lock, and a child
#: would find that lock held by a thread it does not have: a child writing to the same
#: stream hung). A write stalled longer (a full pipe) is left to the child's own guard.
#: Tests: tests/test_fork.py test_a_child_forked_mid_write_can_write_to_the_same_stream and
#: test_a_child_forked_while_the_sink_writes_does_not_hang.
FORK_WAIT = 0.5
