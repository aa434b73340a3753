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
    """Seconds per unit, strftime suffix and suffix pattern for an upper-cased ``when``."""
    day = r"^\d{4}-\d{2}-\d{2}"
    tail = r"(\.\w+)?$"
    if when == "S":
        return 1, "%Y-%m-%d_%H-%M-%S", day + r"_\d{2}-\d{2}-\d{2}" + tail
    if when == "M":
        return 60, "%Y-%m-%d_%H-%M", day + r"_\d{2}-\d{2}" + tail
    if when == "H":
        return 3600, "%Y-%m-%d_%H", day + r"_\d{2}" + tail
    if when in ("D", "MIDNIGHT"):
        return DAY, "%Y-%m-%d", day + tail
    if when.startswith("W"):
        if len(when) != 2 or when[1] not in "0123456":
            raise ValueError(
                f"{owner} weekly rollover needs a day from W0 (Monday) to W6 (Sunday), "
                f"got when={when!r}"
            )
        return 7 * DAY, "%Y-%m-%d", day + tail
    raise ValueError(
        f"{owner} when must be one of S, M, H, D, MIDNIGHT or W0-W6 (any case), got {when!r}"
    )


def next_rollover(
    current: int,
    *,
    when: str,
    interval: int,
    utc: bool,
    at_time: datetime.time | None,
) -> int:
    """The instant of the next rollover after ``current``.

    MIDNIGHT and weekly rollovers land on the next ``at_time`` (midnight by default) of
    the right day, corrected by an hour when a DST change lies in between; the other
    units simply add the interval (seconds).
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
    if left < 0:  # today's time has passed: the next one is tomorrow
        left += DAY
        weekday = (weekday + 1) % 7
    result = current + left
    if not when.startswith("W"):
        return result
    day_of_week = int(when[1])
    if weekday == day_of_week:
        return result
    days = day_of_week - weekday if weekday < day_of_week else 7 - weekday + day_of_week
    later = result + days * DAY
    if not utc:
        dst_now = now.tm_isdst
        dst_then = time.localtime(later).tm_isdst
        if dst_now != dst_then:
            later += -3600 if not dst_now else 3600
    return later


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
