"""The time arithmetic of ``TimedRotatingFileHandler``: when to roll over, what to name files.

Pure functions of instants (seconds since the epoch) and the handler's settings, kept apart
from the file operations in ``_rotating.py`` so that the rules can be read, and tested, on
their own. Local time means the process's time zone (``TZ``), as ``time.localtime`` sees it.
"""

from __future__ import annotations

import datetime
import time

__all__ = ["DAY", "interval_stamp", "next_rollover", "schedule"]

#: Seconds in a day: the period of MIDNIGHT and the unit of the weekly rule.
DAY = 24 * 60 * 60


def schedule(when: str, owner: str) -> tuple[int, str, str]:
    """Seconds per unit, strftime suffix and suffix pattern for an upper-cased ``when``.

    The pattern finds the suffix inside a longer name too: digits may not touch it on
    either side, so ``2024-01-011`` is not a date (CPython 3.13's patterns).
    """
    if when == "S":
        unit, suffix = 1, "%Y-%m-%d_%H-%M-%S"
    elif when == "M":
        unit, suffix = 60, "%Y-%m-%d_%H-%M"
    elif when == "H":
        unit, suffix = 3600, "%Y-%m-%d_%H"
    elif when in ("D", "MIDNIGHT"):
        unit, suffix = DAY, "%Y-%m-%d"
    elif when.startswith("W"):
        if len(when) != 2 or when[1] not in "0123456":
            raise ValueError(
                f"{owner} weekly rollover needs a day from W0 (Monday) to W6 (Sunday), "
                f"got when={when!r}"
            )
        unit, suffix = 7 * DAY, "%Y-%m-%d"
    else:
        raise ValueError(
            f"{owner} when must be one of S, M, H, D, MIDNIGHT or W0-W6 (any case), got {when!r}"
        )
    digits = suffix.replace("%Y", r"\d{4}")
    for field in ("%m", "%d", "%H", "%M", "%S"):
        digits = digits.replace(field, r"\d{2}")
    return unit, suffix, rf"(?<!\d){digits}(?!\d)"


def next_rollover(
    current: int,
    *,
    when: str,
    interval: int,
    utc: bool,
    at_time: datetime.time | None,
) -> int:
    """The instant of the next rollover after ``current``: CPython 3.13's arithmetic.

    S, M, H and D add the interval (seconds). MIDNIGHT and weekly rollovers land on the
    next ``at_time`` (midnight by default) of the right day, strictly after ``current`` (an
    ``at_time`` equal to now means tomorrow), then ``interval - 1`` more days or weeks
    (gh-90535: older CPythons ignored ``interval`` there). In local time the result moves
    by the hour a DST change in between adds or removes, unless that hour would land
    before the change itself (gh-88352: the first midnight after a change).
    """
    if not (when == "MIDNIGHT" or when.startswith("W")):
        return current + interval
    now = time.gmtime(current) if utc else time.localtime(current)
    if at_time is None:
        target = DAY
    else:
        target = (at_time.hour * 60 + at_time.minute) * 60 + at_time.second
    left = target - ((now.tm_hour * 60 + now.tm_min) * 60 + now.tm_sec)
    weekday = now.tm_wday
    if left <= 0:  # today's time has come or passed: the next one is tomorrow
        left += DAY
        weekday = (weekday + 1) % 7
    result = current + left
    if when.startswith("W"):
        day_of_week = int(when[1])
        if weekday != day_of_week:
            result += ((day_of_week - weekday) % 7) * DAY
        result += interval - 7 * DAY  # the first period is the week that ends here
    else:
        result += interval - DAY
    if not utc:
        dst_now = now.tm_isdst
        if dst_now != time.localtime(result).tm_isdst:
            if dst_now:  # DST ends in between: that day is an hour longer
                result += 3600
            elif time.localtime(result - 3600).tm_isdst:  # DST begins: an hour shorter
                result -= 3600
    return result


def interval_stamp(rollover_at: int, interval: int, now: int, *, utc: bool) -> time.struct_time:
    """The time tuple that names the file of the interval ending at ``rollover_at``.

    It is the start of that interval, shifted by an hour when the DST flag at ``now``
    differs from the one at the start, as the stdlib does.
    """
    began = rollover_at - interval
    if utc:
        return time.gmtime(began)
    stamp = time.localtime(began)
    dst_now = time.localtime(now).tm_isdst
    if dst_now != stamp.tm_isdst:
        stamp = time.localtime(began + (3600 if dst_now else -3600))
    return stamp
