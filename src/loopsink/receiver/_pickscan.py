"""A pass over a pickle's opcodes before the C unpickler runs it.

The C unpickler trusts the sizes a pickle states. A ``LONG_BINPUT`` with memo index 10**8
makes it allocate (and clear) a memo array of that many slots, gigabytes from a 9-byte
payload; a tuple nested 150,000 deep is built without complaint and then hashed (as a dict
key or a set member) by C code that recurses without a depth check, which overflows the C
stack and kills the process. Neither can be stopped from inside ``find_class``.

So every pickle frame is walked first, opcode by opcode, without building anything: each
argument must lie inside the frame, memo indexes and ``FRAME`` sizes must not exceed the
frame's own size, tuples may nest at most ``max_depth`` deep (tuples are the only containers
whose hash recurses: lists and dicts cannot be hashed, a frozenset caches its hash), the
number of keys hashed into dicts and sets is bounded (colliding integer keys make each
insertion cost as much as all the previous ones), and so is the number of containers built
(which bounds how deep lists and dicts can nest, however the memo is used, and the time the
C unpickler holds the interpreter lock). Only a pickle that passes is unpickled.

What senders send nearly always is one flat dict of strings and numbers; such a pickle
takes a shorter walk (:func:`_flat_dict`) that checks only what can go wrong in it, and
anything else takes the full one.
"""

from __future__ import annotations

import struct

__all__ = ["PickleRejected", "scan_pickle"]


class PickleRejected(ValueError):
    """The walk refused the pickle; ``forbidden`` tells a refused feature from a broken one."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


# What each opcode does, as far as the walk cares. Sizes of fixed arguments in _WIDTH.
_SCALAR = 1  # pushes a value that is not a tuple; fixed-width argument (maybe none)
_STR4 = 2  # pushes a value; 4-byte little-endian length, then that many bytes
_STR1 = 3  # pushes a value; 1-byte length, then that many bytes
_STR8 = 4  # pushes a value; 8-byte length, then that many bytes
_LINE = 5  # pushes a value; argument is one line (FLOAT INT LONG STRING UNICODE GLOBAL: two)
_PUT = 6  # BINPUT LONG_BINPUT PUT MEMOIZE
_GET = 7  # BINGET LONG_BINGET GET
_MARK = 8
_SETITEMS = 9  # SETITEMS APPENDS ADDITEMS: mark..top into the container below the mark
_BUILD_FROM_MARK = 10  # LIST DICT FROZENSET OBJ INST TUPLE: mark..top becomes one value
_TUPLE_N = 11  # EMPTY_TUPLE TUPLE1 TUPLE2 TUPLE3
_POP_N = 12  # POP APPEND BUILD SETITEM
_CALL = 13  # REDUCE NEWOBJ STACK_GLOBAL NEWOBJ_EX: n values become one
_STOP = 14
_PROTO = 15
_FRAME = 16
_DUP = 17
_POP_MARK = 18
_REFUSED = 19  # persistent ids, out-of-band buffers
_EMPTY = 20  # EMPTY_DICT EMPTY_LIST EMPTY_SET: a new container

_CODE = [0] * 256
_WIDTH = [0] * 256


def _set(ops: bytes, code: int, width: int = 0) -> None:
    for op in ops:
        _CODE[op] = code
        _WIDTH[op] = width


_set(b"N\x88\x89", _SCALAR)
_set(b"}]\x8f", _EMPTY)
_set(b"K", _SCALAR, 1)
_set(b"\x82", _SCALAR, 1)
_set(b"M\x83", _SCALAR, 2)
_set(b"J\x84", _SCALAR, 4)
_set(b"G", _SCALAR, 8)
_set(b"XTB\x8b", _STR4)
_set(b"UC\x8c\x8a", _STR1)
_set(b"\x8d\x8e\x96", _STR8)
_set(b"FILSVc", _LINE)
_set(b"q", _PUT, 1)
_set(b"r", _PUT, 4)
_set(b"p\x94", _PUT)
_set(b"h", _GET, 1)
_set(b"j", _GET, 4)
_set(b"g", _GET)
_set(b"(", _MARK)
_set(b"eu\x90", _SETITEMS)
_set(b"ldoi\x91t", _BUILD_FROM_MARK)
_set(b")", _TUPLE_N, 0)
_set(b"\x85", _TUPLE_N, 1)
_set(b"\x86", _TUPLE_N, 2)
_set(b"\x87", _TUPLE_N, 3)
_set(b"0", _POP_N, 1)
_set(b"ab", _POP_N, 1)
_set(b"s", _POP_N, 2)
_set(b"R\x81\x93", _CALL, 2)
_set(b"\x92", _CALL, 3)
_set(b".", _STOP)
_set(b"\x80", _PROTO, 1)
_set(b"\x95", _FRAME, 8)
_set(b"2", _DUP)
_set(b"1", _POP_MARK)
_set(b"PQ\x97\x98", _REFUSED)

_u32 = struct.Struct("<I").unpack_from
_u64 = struct.Struct("<Q").unpack_from


def scan_pickle(
    data: bytes,
    start: int,
    end: int,
    *,
    max_depth: int,
    max_hashed: int,
    max_containers: int,
    max_opcodes: int,
) -> None:
    """Walk the pickle in ``data[start:end]``; raise PickleRejected if it must not be loaded.

    The pickle must end with its ``STOP`` exactly at ``end``.
    """
    if end - start <= max_opcodes and _flat_dict(data, start, end, max_hashed):
        return
    try:
        _walk(data, start, end, max_depth, max_hashed, max_containers, max_opcodes)
    except (IndexError, struct.error):
        raise PickleRejected("pickle argument runs past the end of the frame") from None


# The opcodes of a flat dict's values, for _flat_dict: what one value takes, opcode and
# fixed-width argument together (0: not such an opcode). NONE NEWTRUE NEWFALSE, BININT1,
# BININT2, BININT, BINFLOAT.
_FIXED = [0] * 256
for _op, _size in ((b"N\x88\x89", 1), (b"K", 2), (b"M", 3), (b"J", 5), (b"G", 9)):
    for _byte in _op:
        _FIXED[_byte] = _size
# Values with a 4-byte length (BINUNICODE BINBYTES BINSTRING) or a 1-byte one
# (SHORT_BINUNICODE SHORT_BINBYTES SHORT_BINSTRING LONG1), and a line (INT LONG FLOAT).
_LENGTH4 = frozenset(b"XBT")  # X: taken first, on its own
_LENGTH1 = frozenset(b"\x8cCU\x8a")
_LINE_VALUES = frozenset(b"ILF")


def _flat_dict(data: bytes, start: int, end: int, max_hashed: int) -> bool:
    """Whether the pickle is one dict of plain scalars, in one ``SETITEMS``: what every
    ``SocketHandler`` sends for a record without ``extra`` containers.

    Such a pickle passes every check of :func:`_walk` when its memo indexes are in bounds,
    it sets at most ``max_hashed`` keys and ends with its ``STOP`` at ``end``; the caller
    makes sure it has no more opcodes than allowed by passing only frames with fewer bytes.
    This walk looks at a fraction of what :func:`_walk` looks at per opcode. Anything else
    (a container among the values, a second ``SETITEMS``, a frame that breaks off, a
    refused opcode) makes it answer ``False``, and :func:`_walk` decides, with its messages.
    """
    size = end - start
    try:
        pos = start
        if data[pos] == 0x80:  # PROTO
            pos += 2
        if data[pos] == 0x95:  # FRAME
            if _u64(data, pos + 1)[0] > end - pos - 9:
                return False
            pos += 9
        if data[pos] != 0x7D:  # EMPTY_DICT
            return False
        pos += 1
        op = data[pos]
        if op == 0x71:  # BINPUT
            if data[pos + 1] > size:
                return False
            pos += 2
        elif op == 0x94:  # MEMOIZE
            pos += 1
        if data[pos] != 0x28:  # MARK
            return False
        pos += 1
        values = 0
        fixed, length4, length1, lines, u32 = _FIXED, _LENGTH4, _LENGTH1, _LINE_VALUES, _u32
        # A one-byte memo index cannot exceed a frame of 255 bytes or more: only a smaller
        # frame has its BINPUT indexes checked.
        small = size < 255
        while pos < end:
            op = data[pos]
            if op == 0x58:  # BINUNICODE and its BINPUT: nearly every key and most values
                pos += 5 + u32(data, pos + 1)[0]
                op = data[pos]
                if op == 0x71:  # BINPUT
                    if small and data[pos + 1] > size:
                        return False
                    pos += 2
                    op = data[pos]
                values += 1
                # What follows a key, its value, is taken in the same turn.
                if op == 0x58:
                    pos += 5 + u32(data, pos + 1)[0]
                    if data[pos] == 0x71:  # BINPUT
                        if small and data[pos + 1] > size:
                            return False
                        pos += 2
                    values += 1
                    continue
            if width := fixed[op]:  # None, a bool, an int or a float
                pos += width
            elif op in length4:  # BINBYTES, BINSTRING (and their BINPUT)
                pos += 5 + u32(data, pos + 1)[0]
                if data[pos] == 0x71:  # BINPUT
                    if small and data[pos + 1] > size:
                        return False
                    pos += 2
            elif op in length1:
                pos += 2 + data[pos + 1]
            elif op == 0x71:  # BINPUT: not a value
                if small and data[pos + 1] > size:
                    return False
                pos += 2
                continue
            elif op == 0x94:  # MEMOIZE
                pos += 1
                continue
            elif op == 0x75:  # SETITEMS
                return pos + 2 == end and data[pos + 1] == 0x2E and values // 2 <= max_hashed
            elif op == 0x68:  # BINGET
                pos += 2
            elif op in lines:
                newline = data.find(b"\n", pos, end)
                if newline < 0:
                    return False
                pos = newline + 1
            else:
                return False
            values += 1
    except (IndexError, struct.error):
        pass
    return False


def _walk(
    data: bytes,
    start: int,
    end: int,
    max_depth: int,
    max_hashed: int,
    max_containers: int,
    max_opcodes: int,
) -> None:
    size = end - start
    stack: list[int] = []  # per value: how deep tuples nest in it (0: not a tuple)
    marks: list[int] = []
    memo: dict[int, int] = {}
    hashed = 0
    containers = 0
    pos = start
    code_of, width_of = _CODE, _WIDTH
    append = stack.append
    u32 = _u32
    budget = max_opcodes
    while pos < end:
        budget -= 1
        if budget < 0:
            raise PickleRejected(f"pickle has more than {max_opcodes} opcodes")
        op = data[pos]
        pos += 1
        code = code_of[op]
        if code == _STR4:
            pos += 4 + u32(data, pos)[0]
            append(0)
            if data[pos] == 0x71:  # BINPUT, what follows nearly every string: inline
                memo[data[pos + 1]] = 0
                pos += 2
        elif code == _PUT:
            width = width_of[op]
            if width == 1:
                index = data[pos]
            elif width == 4:
                index = u32(data, pos)[0]
            elif op == 0x94:
                index = len(memo)
            else:
                pos, index = _line_int(data, pos, end)
            pos += width
            if index > size:
                raise PickleRejected(f"pickle memo index {index} is above the frame size {size}")
            memo[index] = stack[-1]
        elif code == _SCALAR:
            pos += width_of[op]
            append(0)
        elif code == _EMPTY:
            containers += 1
            append(0)
        elif code == _GET:
            width = width_of[op]
            if width == 1:
                index = data[pos]
            elif width == 4:
                index = u32(data, pos)[0]
            else:
                pos, index = _line_int(data, pos, end)
            pos += width
            append(memo.get(index, 0))
        elif code == _STR1:
            pos += 1 + data[pos]
            append(0)
        elif code == _MARK:
            marks.append(len(stack))
        elif code == _SETITEMS:
            mark = marks.pop()
            if mark < 1:
                raise PickleRejected("pickle stack underflow")
            if op != 0x65:  # SETITEMS hashes every other item, ADDITEMS every item
                hashed += (len(stack) - mark) // (2 if op == 0x75 else 1)
            del stack[mark:]
        elif code == _TUPLE_N:
            containers += 1
            count = width_of[op]
            depth = 1
            if count:
                if len(stack) < count:
                    raise PickleRejected("pickle stack underflow")
                depth += max(stack[-count:])
                del stack[-count:]
            if depth > max_depth:
                raise _too_deep(max_depth)
            append(depth)
        elif code == _BUILD_FROM_MARK:
            containers += 1
            mark = marks.pop()
            items = stack[mark:]
            del stack[mark:]
            if op == 0x74:  # TUPLE
                depth = 1 + max(items, default=0)
                if depth > max_depth:
                    raise _too_deep(max_depth)
                append(depth)
                continue
            if op == 0x64:  # DICT
                hashed += len(items) // 2
            elif op == 0x91:  # FROZENSET
                hashed += len(items)
            if op == 0x69:  # INST: two lines of argument
                for _ in range(2):
                    pos = _line_end(data, pos, end)
            append(0)
        elif code == _POP_N:
            count = width_of[op]
            if len(stack) < count + (op != 0x30):
                raise PickleRejected("pickle stack underflow")
            hashed += op == 0x73
            del stack[-count:]
        elif code == _LINE:
            pos = _line_end(data, pos, end)
            if op == 0x63:  # GLOBAL: module and name
                pos = _line_end(data, pos, end)
            append(0)
        elif code == _STR8:
            pos += 8 + _u64(data, pos)[0]
            append(0)
        elif code == _STOP:
            if pos != end:
                raise PickleRejected("frame length does not match the pickle it holds")
            if len(stack) != 1 or marks:
                raise PickleRejected("pickle ends with a broken stack")
            return
        elif code == _CALL:
            count = width_of[op]
            if len(stack) < count:
                raise PickleRejected("pickle stack underflow")
            del stack[-count:]
            append(0)
        elif code == _PROTO:
            pos += 1
        elif code == _FRAME:
            length = _u64(data, pos)[0]
            pos += 8
            if length > end - pos:
                raise PickleRejected(
                    f"pickle FRAME of {length} bytes is above what the frame holds"
                )
        elif code == _DUP:
            append(stack[-1])
        elif code == _POP_MARK:
            del stack[marks.pop() :]
        elif code == _REFUSED:
            raise PickleRejected(
                "persistent ids and out-of-band buffers are not allowed in a log record frame",
                forbidden=True,
            )
        else:
            raise PickleRejected(f"unknown pickle opcode 0x{op:02x}")
        if hashed > max_hashed:
            raise PickleRejected(f"pickle hashes more than {max_hashed} keys into dicts and sets")
        if containers > max_containers:
            raise PickleRejected(f"pickle builds more than {max_containers} containers")
    if pos > end:
        raise PickleRejected("pickle argument runs past the end of the frame")
    raise PickleRejected("pickle has no STOP opcode at the end of the frame")


def _line_end(data: bytes, pos: int, end: int) -> int:
    newline = data.find(b"\n", pos, end)
    if newline < 0:
        raise PickleRejected("pickle line argument has no end")
    return newline + 1


def _line_int(data: bytes, pos: int, end: int) -> tuple[int, int]:
    after = _line_end(data, pos, end)
    text = data[pos : after - 1]
    if len(text) > 20:
        raise PickleRejected("pickle memo index is too long")
    try:
        return after, int(text)
    except ValueError:
        raise PickleRejected("pickle memo index is not a number") from None


def _too_deep(max_depth: int) -> PickleRejected:
    return PickleRejected(f"pickle nests tuples deeper than {max_depth}")
