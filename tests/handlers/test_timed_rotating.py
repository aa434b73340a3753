"""TimedRotatingFileHandler: CPython 3.13's instants, suffixes and retention, on a fake clock.

No test waits for time to pass, and no test asks the running stdlib: every expected value
is written down here. The tables were derived once from CPython 3.13.0's own
``logging.handlers`` (``tests/handlers/derive_rotation_tables.py``, run with 3.13), so the
suite checks that loopsink behaves as 3.13 does on every Python it supports, the fixes of
3.13 included (gh-90535 ``interval`` for MIDNIGHT and weekly, gh-88352 the first midnight
after a DST change, an ``atTime`` equal to now, ``getFilesToDelete``).
"""

from __future__ import annotations

import calendar
import datetime
import gzip
import logging
import os
import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from filesinks_support import batches, make_record, snapshot_dir

from loopsink import TimedRotatingFileHandler

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test in the time zone given by the parameter, then restore the old one."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        yield request.param
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def _instant(text: str) -> int:
    return int(datetime.datetime.fromisoformat(text).timestamp())


# CPython 3.13's computeRollover(instant), instants and results in the zone's local time with
# their UTC offsets: for each zone the days around its two 2024 DST changes (Kolkata has
# none), at noon the day before, at 02:30:15 the day before and at midnight on the day (an
# atTime equal to now), a second before the change and an hour after it.
# zone / instant / when / interval / atTime / utc or local / next rollover
ROLLOVERS = """
America/New_York    2024-03-09T02:30:15-05:00 MIDNIGHT 1 -        local 2024-03-10T00:00:00-05:00
America/New_York    2024-03-09T12:00:00-05:00 MIDNIGHT 1 -        local 2024-03-10T00:00:00-05:00
America/New_York    2024-03-10T00:00:00-05:00 MIDNIGHT 1 -        local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-10T01:59:59-05:00 MIDNIGHT 1 -        local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-10T04:00:00-04:00 MIDNIGHT 1 -        local 2024-03-11T00:00:00-04:00
America/New_York    2024-11-02T02:30:15-04:00 MIDNIGHT 1 -        local 2024-11-03T00:00:00-04:00
America/New_York    2024-11-02T12:00:00-04:00 MIDNIGHT 1 -        local 2024-11-03T00:00:00-04:00
America/New_York    2024-11-03T00:00:00-04:00 MIDNIGHT 1 -        local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-03T01:59:59-04:00 MIDNIGHT 1 -        local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-03T02:00:00-05:00 MIDNIGHT 1 -        local 2024-11-04T00:00:00-05:00
America/New_York    2024-03-09T02:30:15-05:00 MIDNIGHT 3 -        local 2024-03-12T00:00:00-04:00
America/New_York    2024-03-09T12:00:00-05:00 MIDNIGHT 3 -        local 2024-03-12T00:00:00-04:00
America/New_York    2024-03-10T00:00:00-05:00 MIDNIGHT 3 -        local 2024-03-13T00:00:00-04:00
America/New_York    2024-03-10T01:59:59-05:00 MIDNIGHT 3 -        local 2024-03-13T00:00:00-04:00
America/New_York    2024-03-10T04:00:00-04:00 MIDNIGHT 3 -        local 2024-03-13T00:00:00-04:00
America/New_York    2024-11-02T02:30:15-04:00 MIDNIGHT 3 -        local 2024-11-05T00:00:00-05:00
America/New_York    2024-11-02T12:00:00-04:00 MIDNIGHT 3 -        local 2024-11-05T00:00:00-05:00
America/New_York    2024-11-03T00:00:00-04:00 MIDNIGHT 3 -        local 2024-11-06T00:00:00-05:00
America/New_York    2024-11-03T01:59:59-04:00 MIDNIGHT 3 -        local 2024-11-06T00:00:00-05:00
America/New_York    2024-11-03T02:00:00-05:00 MIDNIGHT 3 -        local 2024-11-06T00:00:00-05:00
America/New_York    2024-03-09T02:30:15-05:00 MIDNIGHT 1 00:00:00 local 2024-03-10T00:00:00-05:00
America/New_York    2024-03-09T12:00:00-05:00 MIDNIGHT 1 00:00:00 local 2024-03-10T00:00:00-05:00
America/New_York    2024-03-10T00:00:00-05:00 MIDNIGHT 1 00:00:00 local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-10T01:59:59-05:00 MIDNIGHT 1 00:00:00 local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-10T04:00:00-04:00 MIDNIGHT 1 00:00:00 local 2024-03-11T00:00:00-04:00
America/New_York    2024-11-02T02:30:15-04:00 MIDNIGHT 1 00:00:00 local 2024-11-03T00:00:00-04:00
America/New_York    2024-11-02T12:00:00-04:00 MIDNIGHT 1 00:00:00 local 2024-11-03T00:00:00-04:00
America/New_York    2024-11-03T00:00:00-04:00 MIDNIGHT 1 00:00:00 local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-03T01:59:59-04:00 MIDNIGHT 1 00:00:00 local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-03T02:00:00-05:00 MIDNIGHT 1 00:00:00 local 2024-11-04T00:00:00-05:00
America/New_York    2024-03-09T02:30:15-05:00 MIDNIGHT 2 02:30:15 local 2024-03-11T02:30:15-04:00
America/New_York    2024-03-09T12:00:00-05:00 MIDNIGHT 2 02:30:15 local 2024-03-11T02:30:15-04:00
America/New_York    2024-03-10T00:00:00-05:00 MIDNIGHT 2 02:30:15 local 2024-03-11T02:30:15-04:00
America/New_York    2024-03-10T01:59:59-05:00 MIDNIGHT 2 02:30:15 local 2024-03-11T02:30:15-04:00
America/New_York    2024-03-10T04:00:00-04:00 MIDNIGHT 2 02:30:15 local 2024-03-12T02:30:15-04:00
America/New_York    2024-11-02T02:30:15-04:00 MIDNIGHT 2 02:30:15 local 2024-11-04T02:30:15-05:00
America/New_York    2024-11-02T12:00:00-04:00 MIDNIGHT 2 02:30:15 local 2024-11-04T02:30:15-05:00
America/New_York    2024-11-03T00:00:00-04:00 MIDNIGHT 2 02:30:15 local 2024-11-04T02:30:15-05:00
America/New_York    2024-11-03T01:59:59-04:00 MIDNIGHT 2 02:30:15 local 2024-11-04T02:30:15-05:00
America/New_York    2024-11-03T02:00:00-05:00 MIDNIGHT 2 02:30:15 local 2024-11-04T02:30:15-05:00
America/New_York    2024-03-09T02:30:15-05:00 W6       1 -        local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-09T12:00:00-05:00 W6       1 -        local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-10T00:00:00-05:00 W6       1 -        local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-10T01:59:59-05:00 W6       1 -        local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-10T04:00:00-04:00 W6       1 -        local 2024-03-11T00:00:00-04:00
America/New_York    2024-11-02T02:30:15-04:00 W6       1 -        local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-02T12:00:00-04:00 W6       1 -        local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-03T00:00:00-04:00 W6       1 -        local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-03T01:59:59-04:00 W6       1 -        local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-03T02:00:00-05:00 W6       1 -        local 2024-11-04T00:00:00-05:00
America/New_York    2024-03-09T02:30:15-05:00 W2       2 02:30:15 local 2024-03-20T02:30:15-04:00
America/New_York    2024-03-09T12:00:00-05:00 W2       2 02:30:15 local 2024-03-20T02:30:15-04:00
America/New_York    2024-03-10T00:00:00-05:00 W2       2 02:30:15 local 2024-03-20T02:30:15-04:00
America/New_York    2024-03-10T01:59:59-05:00 W2       2 02:30:15 local 2024-03-20T02:30:15-04:00
America/New_York    2024-03-10T04:00:00-04:00 W2       2 02:30:15 local 2024-03-20T02:30:15-04:00
America/New_York    2024-11-02T02:30:15-04:00 W2       2 02:30:15 local 2024-11-13T02:30:15-05:00
America/New_York    2024-11-02T12:00:00-04:00 W2       2 02:30:15 local 2024-11-13T02:30:15-05:00
America/New_York    2024-11-03T00:00:00-04:00 W2       2 02:30:15 local 2024-11-13T02:30:15-05:00
America/New_York    2024-11-03T01:59:59-04:00 W2       2 02:30:15 local 2024-11-13T02:30:15-05:00
America/New_York    2024-11-03T02:00:00-05:00 W2       2 02:30:15 local 2024-11-13T02:30:15-05:00
America/New_York    2024-03-09T02:30:15-05:00 W0       1 00:00:00 local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-09T12:00:00-05:00 W0       1 00:00:00 local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-10T00:00:00-05:00 W0       1 00:00:00 local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-10T01:59:59-05:00 W0       1 00:00:00 local 2024-03-11T00:00:00-04:00
America/New_York    2024-03-10T04:00:00-04:00 W0       1 00:00:00 local 2024-03-11T00:00:00-04:00
America/New_York    2024-11-02T02:30:15-04:00 W0       1 00:00:00 local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-02T12:00:00-04:00 W0       1 00:00:00 local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-03T00:00:00-04:00 W0       1 00:00:00 local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-03T01:59:59-04:00 W0       1 00:00:00 local 2024-11-04T00:00:00-05:00
America/New_York    2024-11-03T02:00:00-05:00 W0       1 00:00:00 local 2024-11-04T00:00:00-05:00
America/New_York    2024-03-09T02:30:15-05:00 H        3 -        local 2024-03-09T05:30:15-05:00
America/New_York    2024-03-09T12:00:00-05:00 H        3 -        local 2024-03-09T15:00:00-05:00
America/New_York    2024-03-10T00:00:00-05:00 H        3 -        local 2024-03-10T04:00:00-04:00
America/New_York    2024-03-10T01:59:59-05:00 H        3 -        local 2024-03-10T05:59:59-04:00
America/New_York    2024-03-10T04:00:00-04:00 H        3 -        local 2024-03-10T07:00:00-04:00
America/New_York    2024-11-02T02:30:15-04:00 H        3 -        local 2024-11-02T05:30:15-04:00
America/New_York    2024-11-02T12:00:00-04:00 H        3 -        local 2024-11-02T15:00:00-04:00
America/New_York    2024-11-03T00:00:00-04:00 H        3 -        local 2024-11-03T02:00:00-05:00
America/New_York    2024-11-03T01:59:59-04:00 H        3 -        local 2024-11-03T03:59:59-05:00
America/New_York    2024-11-03T02:00:00-05:00 H        3 -        local 2024-11-03T05:00:00-05:00
America/New_York    2024-03-09T02:30:15-05:00 MIDNIGHT 2 -        utc   2024-03-10T20:00:00-04:00
America/New_York    2024-03-09T12:00:00-05:00 MIDNIGHT 2 -        utc   2024-03-10T20:00:00-04:00
America/New_York    2024-03-10T00:00:00-05:00 MIDNIGHT 2 -        utc   2024-03-11T20:00:00-04:00
America/New_York    2024-03-10T01:59:59-05:00 MIDNIGHT 2 -        utc   2024-03-11T20:00:00-04:00
America/New_York    2024-03-10T04:00:00-04:00 MIDNIGHT 2 -        utc   2024-03-11T20:00:00-04:00
America/New_York    2024-11-02T02:30:15-04:00 MIDNIGHT 2 -        utc   2024-11-03T19:00:00-05:00
America/New_York    2024-11-02T12:00:00-04:00 MIDNIGHT 2 -        utc   2024-11-03T19:00:00-05:00
America/New_York    2024-11-03T00:00:00-04:00 MIDNIGHT 2 -        utc   2024-11-04T19:00:00-05:00
America/New_York    2024-11-03T01:59:59-04:00 MIDNIGHT 2 -        utc   2024-11-04T19:00:00-05:00
America/New_York    2024-11-03T02:00:00-05:00 MIDNIGHT 2 -        utc   2024-11-04T19:00:00-05:00
Europe/London       2024-03-30T02:30:15+00:00 MIDNIGHT 1 -        local 2024-03-31T00:00:00+00:00
Europe/London       2024-03-30T12:00:00+00:00 MIDNIGHT 1 -        local 2024-03-31T00:00:00+00:00
Europe/London       2024-03-31T00:00:00+00:00 MIDNIGHT 1 -        local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-31T00:59:59+00:00 MIDNIGHT 1 -        local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-31T03:00:00+01:00 MIDNIGHT 1 -        local 2024-04-01T00:00:00+01:00
Europe/London       2024-10-26T02:30:15+01:00 MIDNIGHT 1 -        local 2024-10-27T00:00:00+01:00
Europe/London       2024-10-26T12:00:00+01:00 MIDNIGHT 1 -        local 2024-10-27T00:00:00+01:00
Europe/London       2024-10-27T00:00:00+01:00 MIDNIGHT 1 -        local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T01:59:59+01:00 MIDNIGHT 1 -        local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T02:00:00+00:00 MIDNIGHT 1 -        local 2024-10-28T00:00:00+00:00
Europe/London       2024-03-30T02:30:15+00:00 MIDNIGHT 3 -        local 2024-04-02T00:00:00+01:00
Europe/London       2024-03-30T12:00:00+00:00 MIDNIGHT 3 -        local 2024-04-02T00:00:00+01:00
Europe/London       2024-03-31T00:00:00+00:00 MIDNIGHT 3 -        local 2024-04-03T00:00:00+01:00
Europe/London       2024-03-31T00:59:59+00:00 MIDNIGHT 3 -        local 2024-04-03T00:00:00+01:00
Europe/London       2024-03-31T03:00:00+01:00 MIDNIGHT 3 -        local 2024-04-03T00:00:00+01:00
Europe/London       2024-10-26T02:30:15+01:00 MIDNIGHT 3 -        local 2024-10-29T00:00:00+00:00
Europe/London       2024-10-26T12:00:00+01:00 MIDNIGHT 3 -        local 2024-10-29T00:00:00+00:00
Europe/London       2024-10-27T00:00:00+01:00 MIDNIGHT 3 -        local 2024-10-30T00:00:00+00:00
Europe/London       2024-10-27T01:59:59+01:00 MIDNIGHT 3 -        local 2024-10-30T00:00:00+00:00
Europe/London       2024-10-27T02:00:00+00:00 MIDNIGHT 3 -        local 2024-10-30T00:00:00+00:00
Europe/London       2024-03-30T02:30:15+00:00 MIDNIGHT 1 00:00:00 local 2024-03-31T00:00:00+00:00
Europe/London       2024-03-30T12:00:00+00:00 MIDNIGHT 1 00:00:00 local 2024-03-31T00:00:00+00:00
Europe/London       2024-03-31T00:00:00+00:00 MIDNIGHT 1 00:00:00 local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-31T00:59:59+00:00 MIDNIGHT 1 00:00:00 local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-31T03:00:00+01:00 MIDNIGHT 1 00:00:00 local 2024-04-01T00:00:00+01:00
Europe/London       2024-10-26T02:30:15+01:00 MIDNIGHT 1 00:00:00 local 2024-10-27T00:00:00+01:00
Europe/London       2024-10-26T12:00:00+01:00 MIDNIGHT 1 00:00:00 local 2024-10-27T00:00:00+01:00
Europe/London       2024-10-27T00:00:00+01:00 MIDNIGHT 1 00:00:00 local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T01:59:59+01:00 MIDNIGHT 1 00:00:00 local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T02:00:00+00:00 MIDNIGHT 1 00:00:00 local 2024-10-28T00:00:00+00:00
Europe/London       2024-03-30T02:30:15+00:00 MIDNIGHT 2 02:30:15 local 2024-04-01T02:30:15+01:00
Europe/London       2024-03-30T12:00:00+00:00 MIDNIGHT 2 02:30:15 local 2024-04-01T02:30:15+01:00
Europe/London       2024-03-31T00:00:00+00:00 MIDNIGHT 2 02:30:15 local 2024-04-01T02:30:15+01:00
Europe/London       2024-03-31T00:59:59+00:00 MIDNIGHT 2 02:30:15 local 2024-04-01T02:30:15+01:00
Europe/London       2024-03-31T03:00:00+01:00 MIDNIGHT 2 02:30:15 local 2024-04-02T02:30:15+01:00
Europe/London       2024-10-26T02:30:15+01:00 MIDNIGHT 2 02:30:15 local 2024-10-28T02:30:15+00:00
Europe/London       2024-10-26T12:00:00+01:00 MIDNIGHT 2 02:30:15 local 2024-10-28T02:30:15+00:00
Europe/London       2024-10-27T00:00:00+01:00 MIDNIGHT 2 02:30:15 local 2024-10-28T02:30:15+00:00
Europe/London       2024-10-27T01:59:59+01:00 MIDNIGHT 2 02:30:15 local 2024-10-28T02:30:15+00:00
Europe/London       2024-10-27T02:00:00+00:00 MIDNIGHT 2 02:30:15 local 2024-10-28T02:30:15+00:00
Europe/London       2024-03-30T02:30:15+00:00 W6       1 -        local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-30T12:00:00+00:00 W6       1 -        local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-31T00:00:00+00:00 W6       1 -        local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-31T00:59:59+00:00 W6       1 -        local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-31T03:00:00+01:00 W6       1 -        local 2024-04-01T00:00:00+01:00
Europe/London       2024-10-26T02:30:15+01:00 W6       1 -        local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-26T12:00:00+01:00 W6       1 -        local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T00:00:00+01:00 W6       1 -        local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T01:59:59+01:00 W6       1 -        local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T02:00:00+00:00 W6       1 -        local 2024-10-28T00:00:00+00:00
Europe/London       2024-03-30T02:30:15+00:00 W2       2 02:30:15 local 2024-04-10T02:30:15+01:00
Europe/London       2024-03-30T12:00:00+00:00 W2       2 02:30:15 local 2024-04-10T02:30:15+01:00
Europe/London       2024-03-31T00:00:00+00:00 W2       2 02:30:15 local 2024-04-10T02:30:15+01:00
Europe/London       2024-03-31T00:59:59+00:00 W2       2 02:30:15 local 2024-04-10T02:30:15+01:00
Europe/London       2024-03-31T03:00:00+01:00 W2       2 02:30:15 local 2024-04-10T02:30:15+01:00
Europe/London       2024-10-26T02:30:15+01:00 W2       2 02:30:15 local 2024-11-06T02:30:15+00:00
Europe/London       2024-10-26T12:00:00+01:00 W2       2 02:30:15 local 2024-11-06T02:30:15+00:00
Europe/London       2024-10-27T00:00:00+01:00 W2       2 02:30:15 local 2024-11-06T02:30:15+00:00
Europe/London       2024-10-27T01:59:59+01:00 W2       2 02:30:15 local 2024-11-06T02:30:15+00:00
Europe/London       2024-10-27T02:00:00+00:00 W2       2 02:30:15 local 2024-11-06T02:30:15+00:00
Europe/London       2024-03-30T02:30:15+00:00 W0       1 00:00:00 local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-30T12:00:00+00:00 W0       1 00:00:00 local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-31T00:00:00+00:00 W0       1 00:00:00 local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-31T00:59:59+00:00 W0       1 00:00:00 local 2024-04-01T00:00:00+01:00
Europe/London       2024-03-31T03:00:00+01:00 W0       1 00:00:00 local 2024-04-01T00:00:00+01:00
Europe/London       2024-10-26T02:30:15+01:00 W0       1 00:00:00 local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-26T12:00:00+01:00 W0       1 00:00:00 local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T00:00:00+01:00 W0       1 00:00:00 local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T01:59:59+01:00 W0       1 00:00:00 local 2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T02:00:00+00:00 W0       1 00:00:00 local 2024-10-28T00:00:00+00:00
Europe/London       2024-03-30T02:30:15+00:00 H        3 -        local 2024-03-30T05:30:15+00:00
Europe/London       2024-03-30T12:00:00+00:00 H        3 -        local 2024-03-30T15:00:00+00:00
Europe/London       2024-03-31T00:00:00+00:00 H        3 -        local 2024-03-31T04:00:00+01:00
Europe/London       2024-03-31T00:59:59+00:00 H        3 -        local 2024-03-31T04:59:59+01:00
Europe/London       2024-03-31T03:00:00+01:00 H        3 -        local 2024-03-31T06:00:00+01:00
Europe/London       2024-10-26T02:30:15+01:00 H        3 -        local 2024-10-26T05:30:15+01:00
Europe/London       2024-10-26T12:00:00+01:00 H        3 -        local 2024-10-26T15:00:00+01:00
Europe/London       2024-10-27T00:00:00+01:00 H        3 -        local 2024-10-27T02:00:00+00:00
Europe/London       2024-10-27T01:59:59+01:00 H        3 -        local 2024-10-27T03:59:59+00:00
Europe/London       2024-10-27T02:00:00+00:00 H        3 -        local 2024-10-27T05:00:00+00:00
Europe/London       2024-03-30T02:30:15+00:00 MIDNIGHT 2 -        utc   2024-04-01T01:00:00+01:00
Europe/London       2024-03-30T12:00:00+00:00 MIDNIGHT 2 -        utc   2024-04-01T01:00:00+01:00
Europe/London       2024-03-31T00:00:00+00:00 MIDNIGHT 2 -        utc   2024-04-02T01:00:00+01:00
Europe/London       2024-03-31T00:59:59+00:00 MIDNIGHT 2 -        utc   2024-04-02T01:00:00+01:00
Europe/London       2024-03-31T03:00:00+01:00 MIDNIGHT 2 -        utc   2024-04-02T01:00:00+01:00
Europe/London       2024-10-26T02:30:15+01:00 MIDNIGHT 2 -        utc   2024-10-28T00:00:00+00:00
Europe/London       2024-10-26T12:00:00+01:00 MIDNIGHT 2 -        utc   2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T00:00:00+01:00 MIDNIGHT 2 -        utc   2024-10-28T00:00:00+00:00
Europe/London       2024-10-27T01:59:59+01:00 MIDNIGHT 2 -        utc   2024-10-29T00:00:00+00:00
Europe/London       2024-10-27T02:00:00+00:00 MIDNIGHT 2 -        utc   2024-10-29T00:00:00+00:00
Australia/Sydney    2024-04-06T02:30:15+11:00 MIDNIGHT 1 -        local 2024-04-07T00:00:00+11:00
Australia/Sydney    2024-04-06T12:00:00+11:00 MIDNIGHT 1 -        local 2024-04-07T00:00:00+11:00
Australia/Sydney    2024-04-07T00:00:00+11:00 MIDNIGHT 1 -        local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-07T02:59:59+11:00 MIDNIGHT 1 -        local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-07T03:00:00+10:00 MIDNIGHT 1 -        local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-10-05T02:30:15+10:00 MIDNIGHT 1 -        local 2024-10-06T00:00:00+10:00
Australia/Sydney    2024-10-05T12:00:00+10:00 MIDNIGHT 1 -        local 2024-10-06T00:00:00+10:00
Australia/Sydney    2024-10-06T00:00:00+10:00 MIDNIGHT 1 -        local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-06T01:59:59+10:00 MIDNIGHT 1 -        local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-06T04:00:00+11:00 MIDNIGHT 1 -        local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-04-06T02:30:15+11:00 MIDNIGHT 3 -        local 2024-04-09T00:00:00+10:00
Australia/Sydney    2024-04-06T12:00:00+11:00 MIDNIGHT 3 -        local 2024-04-09T00:00:00+10:00
Australia/Sydney    2024-04-07T00:00:00+11:00 MIDNIGHT 3 -        local 2024-04-10T00:00:00+10:00
Australia/Sydney    2024-04-07T02:59:59+11:00 MIDNIGHT 3 -        local 2024-04-10T00:00:00+10:00
Australia/Sydney    2024-04-07T03:00:00+10:00 MIDNIGHT 3 -        local 2024-04-10T00:00:00+10:00
Australia/Sydney    2024-10-05T02:30:15+10:00 MIDNIGHT 3 -        local 2024-10-08T00:00:00+11:00
Australia/Sydney    2024-10-05T12:00:00+10:00 MIDNIGHT 3 -        local 2024-10-08T00:00:00+11:00
Australia/Sydney    2024-10-06T00:00:00+10:00 MIDNIGHT 3 -        local 2024-10-09T00:00:00+11:00
Australia/Sydney    2024-10-06T01:59:59+10:00 MIDNIGHT 3 -        local 2024-10-09T00:00:00+11:00
Australia/Sydney    2024-10-06T04:00:00+11:00 MIDNIGHT 3 -        local 2024-10-09T00:00:00+11:00
Australia/Sydney    2024-04-06T02:30:15+11:00 MIDNIGHT 1 00:00:00 local 2024-04-07T00:00:00+11:00
Australia/Sydney    2024-04-06T12:00:00+11:00 MIDNIGHT 1 00:00:00 local 2024-04-07T00:00:00+11:00
Australia/Sydney    2024-04-07T00:00:00+11:00 MIDNIGHT 1 00:00:00 local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-07T02:59:59+11:00 MIDNIGHT 1 00:00:00 local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-07T03:00:00+10:00 MIDNIGHT 1 00:00:00 local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-10-05T02:30:15+10:00 MIDNIGHT 1 00:00:00 local 2024-10-06T00:00:00+10:00
Australia/Sydney    2024-10-05T12:00:00+10:00 MIDNIGHT 1 00:00:00 local 2024-10-06T00:00:00+10:00
Australia/Sydney    2024-10-06T00:00:00+10:00 MIDNIGHT 1 00:00:00 local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-06T01:59:59+10:00 MIDNIGHT 1 00:00:00 local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-06T04:00:00+11:00 MIDNIGHT 1 00:00:00 local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-04-06T02:30:15+11:00 MIDNIGHT 2 02:30:15 local 2024-04-08T02:30:15+10:00
Australia/Sydney    2024-04-06T12:00:00+11:00 MIDNIGHT 2 02:30:15 local 2024-04-08T02:30:15+10:00
Australia/Sydney    2024-04-07T00:00:00+11:00 MIDNIGHT 2 02:30:15 local 2024-04-08T02:30:15+10:00
Australia/Sydney    2024-04-07T02:59:59+11:00 MIDNIGHT 2 02:30:15 local 2024-04-09T02:30:15+10:00
Australia/Sydney    2024-04-07T03:00:00+10:00 MIDNIGHT 2 02:30:15 local 2024-04-09T02:30:15+10:00
Australia/Sydney    2024-10-05T02:30:15+10:00 MIDNIGHT 2 02:30:15 local 2024-10-07T02:30:15+11:00
Australia/Sydney    2024-10-05T12:00:00+10:00 MIDNIGHT 2 02:30:15 local 2024-10-07T02:30:15+11:00
Australia/Sydney    2024-10-06T00:00:00+10:00 MIDNIGHT 2 02:30:15 local 2024-10-07T02:30:15+11:00
Australia/Sydney    2024-10-06T01:59:59+10:00 MIDNIGHT 2 02:30:15 local 2024-10-07T02:30:15+11:00
Australia/Sydney    2024-10-06T04:00:00+11:00 MIDNIGHT 2 02:30:15 local 2024-10-08T02:30:15+11:00
Australia/Sydney    2024-04-06T02:30:15+11:00 W6       1 -        local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-06T12:00:00+11:00 W6       1 -        local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-07T00:00:00+11:00 W6       1 -        local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-07T02:59:59+11:00 W6       1 -        local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-07T03:00:00+10:00 W6       1 -        local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-10-05T02:30:15+10:00 W6       1 -        local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-05T12:00:00+10:00 W6       1 -        local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-06T00:00:00+10:00 W6       1 -        local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-06T01:59:59+10:00 W6       1 -        local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-06T04:00:00+11:00 W6       1 -        local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-04-06T02:30:15+11:00 W2       2 02:30:15 local 2024-04-17T02:30:15+10:00
Australia/Sydney    2024-04-06T12:00:00+11:00 W2       2 02:30:15 local 2024-04-17T02:30:15+10:00
Australia/Sydney    2024-04-07T00:00:00+11:00 W2       2 02:30:15 local 2024-04-17T02:30:15+10:00
Australia/Sydney    2024-04-07T02:59:59+11:00 W2       2 02:30:15 local 2024-04-17T02:30:15+10:00
Australia/Sydney    2024-04-07T03:00:00+10:00 W2       2 02:30:15 local 2024-04-17T02:30:15+10:00
Australia/Sydney    2024-10-05T02:30:15+10:00 W2       2 02:30:15 local 2024-10-16T02:30:15+11:00
Australia/Sydney    2024-10-05T12:00:00+10:00 W2       2 02:30:15 local 2024-10-16T02:30:15+11:00
Australia/Sydney    2024-10-06T00:00:00+10:00 W2       2 02:30:15 local 2024-10-16T02:30:15+11:00
Australia/Sydney    2024-10-06T01:59:59+10:00 W2       2 02:30:15 local 2024-10-16T02:30:15+11:00
Australia/Sydney    2024-10-06T04:00:00+11:00 W2       2 02:30:15 local 2024-10-16T02:30:15+11:00
Australia/Sydney    2024-04-06T02:30:15+11:00 W0       1 00:00:00 local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-06T12:00:00+11:00 W0       1 00:00:00 local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-07T00:00:00+11:00 W0       1 00:00:00 local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-07T02:59:59+11:00 W0       1 00:00:00 local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-04-07T03:00:00+10:00 W0       1 00:00:00 local 2024-04-08T00:00:00+10:00
Australia/Sydney    2024-10-05T02:30:15+10:00 W0       1 00:00:00 local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-05T12:00:00+10:00 W0       1 00:00:00 local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-06T00:00:00+10:00 W0       1 00:00:00 local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-06T01:59:59+10:00 W0       1 00:00:00 local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-10-06T04:00:00+11:00 W0       1 00:00:00 local 2024-10-07T00:00:00+11:00
Australia/Sydney    2024-04-06T02:30:15+11:00 H        3 -        local 2024-04-06T05:30:15+11:00
Australia/Sydney    2024-04-06T12:00:00+11:00 H        3 -        local 2024-04-06T15:00:00+11:00
Australia/Sydney    2024-04-07T00:00:00+11:00 H        3 -        local 2024-04-07T02:00:00+10:00
Australia/Sydney    2024-04-07T02:59:59+11:00 H        3 -        local 2024-04-07T04:59:59+10:00
Australia/Sydney    2024-04-07T03:00:00+10:00 H        3 -        local 2024-04-07T06:00:00+10:00
Australia/Sydney    2024-10-05T02:30:15+10:00 H        3 -        local 2024-10-05T05:30:15+10:00
Australia/Sydney    2024-10-05T12:00:00+10:00 H        3 -        local 2024-10-05T15:00:00+10:00
Australia/Sydney    2024-10-06T00:00:00+10:00 H        3 -        local 2024-10-06T04:00:00+11:00
Australia/Sydney    2024-10-06T01:59:59+10:00 H        3 -        local 2024-10-06T05:59:59+11:00
Australia/Sydney    2024-10-06T04:00:00+11:00 H        3 -        local 2024-10-06T07:00:00+11:00
Australia/Sydney    2024-04-06T02:30:15+11:00 MIDNIGHT 2 -        utc   2024-04-07T10:00:00+10:00
Australia/Sydney    2024-04-06T12:00:00+11:00 MIDNIGHT 2 -        utc   2024-04-08T10:00:00+10:00
Australia/Sydney    2024-04-07T00:00:00+11:00 MIDNIGHT 2 -        utc   2024-04-08T10:00:00+10:00
Australia/Sydney    2024-04-07T02:59:59+11:00 MIDNIGHT 2 -        utc   2024-04-08T10:00:00+10:00
Australia/Sydney    2024-04-07T03:00:00+10:00 MIDNIGHT 2 -        utc   2024-04-08T10:00:00+10:00
Australia/Sydney    2024-10-05T02:30:15+10:00 MIDNIGHT 2 -        utc   2024-10-06T11:00:00+11:00
Australia/Sydney    2024-10-05T12:00:00+10:00 MIDNIGHT 2 -        utc   2024-10-07T11:00:00+11:00
Australia/Sydney    2024-10-06T00:00:00+10:00 MIDNIGHT 2 -        utc   2024-10-07T11:00:00+11:00
Australia/Sydney    2024-10-06T01:59:59+10:00 MIDNIGHT 2 -        utc   2024-10-07T11:00:00+11:00
Australia/Sydney    2024-10-06T04:00:00+11:00 MIDNIGHT 2 -        utc   2024-10-07T11:00:00+11:00
Australia/Lord_Howe 2024-04-06T02:30:15+11:00 MIDNIGHT 1 -        local 2024-04-07T00:00:00+11:00
Australia/Lord_Howe 2024-04-06T12:00:00+11:00 MIDNIGHT 1 -        local 2024-04-07T00:00:00+11:00
Australia/Lord_Howe 2024-04-07T00:00:00+11:00 MIDNIGHT 1 -        local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T01:59:59+11:00 MIDNIGHT 1 -        local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T02:30:00+10:30 MIDNIGHT 1 -        local 2024-04-08T00:00:00+10:30
Australia/Lord_Howe 2024-10-05T02:30:15+10:30 MIDNIGHT 1 -        local 2024-10-06T00:00:00+10:30
Australia/Lord_Howe 2024-10-05T12:00:00+10:30 MIDNIGHT 1 -        local 2024-10-06T00:00:00+10:30
Australia/Lord_Howe 2024-10-06T00:00:00+10:30 MIDNIGHT 1 -        local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T01:59:59+10:30 MIDNIGHT 1 -        local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T03:30:00+11:00 MIDNIGHT 1 -        local 2024-10-07T00:00:00+11:00
Australia/Lord_Howe 2024-04-06T02:30:15+11:00 MIDNIGHT 3 -        local 2024-04-09T00:30:00+10:30
Australia/Lord_Howe 2024-04-06T12:00:00+11:00 MIDNIGHT 3 -        local 2024-04-09T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T00:00:00+11:00 MIDNIGHT 3 -        local 2024-04-10T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T01:59:59+11:00 MIDNIGHT 3 -        local 2024-04-10T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T02:30:00+10:30 MIDNIGHT 3 -        local 2024-04-10T00:00:00+10:30
Australia/Lord_Howe 2024-10-05T02:30:15+10:30 MIDNIGHT 3 -        local 2024-10-07T23:30:00+11:00
Australia/Lord_Howe 2024-10-05T12:00:00+10:30 MIDNIGHT 3 -        local 2024-10-07T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T00:00:00+10:30 MIDNIGHT 3 -        local 2024-10-08T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T01:59:59+10:30 MIDNIGHT 3 -        local 2024-10-08T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T03:30:00+11:00 MIDNIGHT 3 -        local 2024-10-09T00:00:00+11:00
Australia/Lord_Howe 2024-04-06T02:30:15+11:00 MIDNIGHT 1 00:00:00 local 2024-04-07T00:00:00+11:00
Australia/Lord_Howe 2024-04-06T12:00:00+11:00 MIDNIGHT 1 00:00:00 local 2024-04-07T00:00:00+11:00
Australia/Lord_Howe 2024-04-07T00:00:00+11:00 MIDNIGHT 1 00:00:00 local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T01:59:59+11:00 MIDNIGHT 1 00:00:00 local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T02:30:00+10:30 MIDNIGHT 1 00:00:00 local 2024-04-08T00:00:00+10:30
Australia/Lord_Howe 2024-10-05T02:30:15+10:30 MIDNIGHT 1 00:00:00 local 2024-10-06T00:00:00+10:30
Australia/Lord_Howe 2024-10-05T12:00:00+10:30 MIDNIGHT 1 00:00:00 local 2024-10-06T00:00:00+10:30
Australia/Lord_Howe 2024-10-06T00:00:00+10:30 MIDNIGHT 1 00:00:00 local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T01:59:59+10:30 MIDNIGHT 1 00:00:00 local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T03:30:00+11:00 MIDNIGHT 1 00:00:00 local 2024-10-07T00:00:00+11:00
Australia/Lord_Howe 2024-04-06T02:30:15+11:00 MIDNIGHT 2 02:30:15 local 2024-04-08T03:00:15+10:30
Australia/Lord_Howe 2024-04-06T12:00:00+11:00 MIDNIGHT 2 02:30:15 local 2024-04-08T03:00:15+10:30
Australia/Lord_Howe 2024-04-07T00:00:00+11:00 MIDNIGHT 2 02:30:15 local 2024-04-08T03:00:15+10:30
Australia/Lord_Howe 2024-04-07T01:59:59+11:00 MIDNIGHT 2 02:30:15 local 2024-04-08T03:00:15+10:30
Australia/Lord_Howe 2024-04-07T02:30:00+10:30 MIDNIGHT 2 02:30:15 local 2024-04-08T02:30:15+10:30
Australia/Lord_Howe 2024-10-05T02:30:15+10:30 MIDNIGHT 2 02:30:15 local 2024-10-07T02:00:15+11:00
Australia/Lord_Howe 2024-10-05T12:00:00+10:30 MIDNIGHT 2 02:30:15 local 2024-10-07T02:00:15+11:00
Australia/Lord_Howe 2024-10-06T00:00:00+10:30 MIDNIGHT 2 02:30:15 local 2024-10-07T02:00:15+11:00
Australia/Lord_Howe 2024-10-06T01:59:59+10:30 MIDNIGHT 2 02:30:15 local 2024-10-07T02:00:15+11:00
Australia/Lord_Howe 2024-10-06T03:30:00+11:00 MIDNIGHT 2 02:30:15 local 2024-10-08T02:30:15+11:00
Australia/Lord_Howe 2024-04-06T02:30:15+11:00 W6       1 -        local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-06T12:00:00+11:00 W6       1 -        local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T00:00:00+11:00 W6       1 -        local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T01:59:59+11:00 W6       1 -        local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T02:30:00+10:30 W6       1 -        local 2024-04-08T00:00:00+10:30
Australia/Lord_Howe 2024-10-05T02:30:15+10:30 W6       1 -        local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-05T12:00:00+10:30 W6       1 -        local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T00:00:00+10:30 W6       1 -        local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T01:59:59+10:30 W6       1 -        local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T03:30:00+11:00 W6       1 -        local 2024-10-07T00:00:00+11:00
Australia/Lord_Howe 2024-04-06T02:30:15+11:00 W2       2 02:30:15 local 2024-04-17T03:00:15+10:30
Australia/Lord_Howe 2024-04-06T12:00:00+11:00 W2       2 02:30:15 local 2024-04-17T03:00:15+10:30
Australia/Lord_Howe 2024-04-07T00:00:00+11:00 W2       2 02:30:15 local 2024-04-17T03:00:15+10:30
Australia/Lord_Howe 2024-04-07T01:59:59+11:00 W2       2 02:30:15 local 2024-04-17T03:00:15+10:30
Australia/Lord_Howe 2024-04-07T02:30:00+10:30 W2       2 02:30:15 local 2024-04-17T02:30:15+10:30
Australia/Lord_Howe 2024-10-05T02:30:15+10:30 W2       2 02:30:15 local 2024-10-16T02:00:15+11:00
Australia/Lord_Howe 2024-10-05T12:00:00+10:30 W2       2 02:30:15 local 2024-10-16T02:00:15+11:00
Australia/Lord_Howe 2024-10-06T00:00:00+10:30 W2       2 02:30:15 local 2024-10-16T02:00:15+11:00
Australia/Lord_Howe 2024-10-06T01:59:59+10:30 W2       2 02:30:15 local 2024-10-16T02:00:15+11:00
Australia/Lord_Howe 2024-10-06T03:30:00+11:00 W2       2 02:30:15 local 2024-10-16T02:30:15+11:00
Australia/Lord_Howe 2024-04-06T02:30:15+11:00 W0       1 00:00:00 local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-06T12:00:00+11:00 W0       1 00:00:00 local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T00:00:00+11:00 W0       1 00:00:00 local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T01:59:59+11:00 W0       1 00:00:00 local 2024-04-08T00:30:00+10:30
Australia/Lord_Howe 2024-04-07T02:30:00+10:30 W0       1 00:00:00 local 2024-04-08T00:00:00+10:30
Australia/Lord_Howe 2024-10-05T02:30:15+10:30 W0       1 00:00:00 local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-05T12:00:00+10:30 W0       1 00:00:00 local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T00:00:00+10:30 W0       1 00:00:00 local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T01:59:59+10:30 W0       1 00:00:00 local 2024-10-06T23:30:00+11:00
Australia/Lord_Howe 2024-10-06T03:30:00+11:00 W0       1 00:00:00 local 2024-10-07T00:00:00+11:00
Australia/Lord_Howe 2024-04-06T02:30:15+11:00 H        3 -        local 2024-04-06T05:30:15+11:00
Australia/Lord_Howe 2024-04-06T12:00:00+11:00 H        3 -        local 2024-04-06T15:00:00+11:00
Australia/Lord_Howe 2024-04-07T00:00:00+11:00 H        3 -        local 2024-04-07T02:30:00+10:30
Australia/Lord_Howe 2024-04-07T01:59:59+11:00 H        3 -        local 2024-04-07T04:29:59+10:30
Australia/Lord_Howe 2024-04-07T02:30:00+10:30 H        3 -        local 2024-04-07T05:30:00+10:30
Australia/Lord_Howe 2024-10-05T02:30:15+10:30 H        3 -        local 2024-10-05T05:30:15+10:30
Australia/Lord_Howe 2024-10-05T12:00:00+10:30 H        3 -        local 2024-10-05T15:00:00+10:30
Australia/Lord_Howe 2024-10-06T00:00:00+10:30 H        3 -        local 2024-10-06T03:30:00+11:00
Australia/Lord_Howe 2024-10-06T01:59:59+10:30 H        3 -        local 2024-10-06T05:29:59+11:00
Australia/Lord_Howe 2024-10-06T03:30:00+11:00 H        3 -        local 2024-10-06T06:30:00+11:00
Australia/Lord_Howe 2024-04-06T02:30:15+11:00 MIDNIGHT 2 -        utc   2024-04-07T10:30:00+10:30
Australia/Lord_Howe 2024-04-06T12:00:00+11:00 MIDNIGHT 2 -        utc   2024-04-08T10:30:00+10:30
Australia/Lord_Howe 2024-04-07T00:00:00+11:00 MIDNIGHT 2 -        utc   2024-04-08T10:30:00+10:30
Australia/Lord_Howe 2024-04-07T01:59:59+11:00 MIDNIGHT 2 -        utc   2024-04-08T10:30:00+10:30
Australia/Lord_Howe 2024-04-07T02:30:00+10:30 MIDNIGHT 2 -        utc   2024-04-08T10:30:00+10:30
Australia/Lord_Howe 2024-10-05T02:30:15+10:30 MIDNIGHT 2 -        utc   2024-10-06T11:00:00+11:00
Australia/Lord_Howe 2024-10-05T12:00:00+10:30 MIDNIGHT 2 -        utc   2024-10-07T11:00:00+11:00
Australia/Lord_Howe 2024-10-06T00:00:00+10:30 MIDNIGHT 2 -        utc   2024-10-07T11:00:00+11:00
Australia/Lord_Howe 2024-10-06T01:59:59+10:30 MIDNIGHT 2 -        utc   2024-10-07T11:00:00+11:00
Australia/Lord_Howe 2024-10-06T03:30:00+11:00 MIDNIGHT 2 -        utc   2024-10-07T11:00:00+11:00
Asia/Kolkata        2024-03-30T02:30:15+05:30 MIDNIGHT 1 -        local 2024-03-31T00:00:00+05:30
Asia/Kolkata        2024-03-30T12:00:00+05:30 MIDNIGHT 1 -        local 2024-03-31T00:00:00+05:30
Asia/Kolkata        2024-03-31T00:00:00+05:30 MIDNIGHT 1 -        local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-31T01:59:59+05:30 MIDNIGHT 1 -        local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-31T03:00:00+05:30 MIDNIGHT 1 -        local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-30T02:30:15+05:30 MIDNIGHT 3 -        local 2024-04-02T00:00:00+05:30
Asia/Kolkata        2024-03-30T12:00:00+05:30 MIDNIGHT 3 -        local 2024-04-02T00:00:00+05:30
Asia/Kolkata        2024-03-31T00:00:00+05:30 MIDNIGHT 3 -        local 2024-04-03T00:00:00+05:30
Asia/Kolkata        2024-03-31T01:59:59+05:30 MIDNIGHT 3 -        local 2024-04-03T00:00:00+05:30
Asia/Kolkata        2024-03-31T03:00:00+05:30 MIDNIGHT 3 -        local 2024-04-03T00:00:00+05:30
Asia/Kolkata        2024-03-30T02:30:15+05:30 MIDNIGHT 1 00:00:00 local 2024-03-31T00:00:00+05:30
Asia/Kolkata        2024-03-30T12:00:00+05:30 MIDNIGHT 1 00:00:00 local 2024-03-31T00:00:00+05:30
Asia/Kolkata        2024-03-31T00:00:00+05:30 MIDNIGHT 1 00:00:00 local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-31T01:59:59+05:30 MIDNIGHT 1 00:00:00 local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-31T03:00:00+05:30 MIDNIGHT 1 00:00:00 local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-30T02:30:15+05:30 MIDNIGHT 2 02:30:15 local 2024-04-01T02:30:15+05:30
Asia/Kolkata        2024-03-30T12:00:00+05:30 MIDNIGHT 2 02:30:15 local 2024-04-01T02:30:15+05:30
Asia/Kolkata        2024-03-31T00:00:00+05:30 MIDNIGHT 2 02:30:15 local 2024-04-01T02:30:15+05:30
Asia/Kolkata        2024-03-31T01:59:59+05:30 MIDNIGHT 2 02:30:15 local 2024-04-01T02:30:15+05:30
Asia/Kolkata        2024-03-31T03:00:00+05:30 MIDNIGHT 2 02:30:15 local 2024-04-02T02:30:15+05:30
Asia/Kolkata        2024-03-30T02:30:15+05:30 W6       1 -        local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-30T12:00:00+05:30 W6       1 -        local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-31T00:00:00+05:30 W6       1 -        local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-31T01:59:59+05:30 W6       1 -        local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-31T03:00:00+05:30 W6       1 -        local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-30T02:30:15+05:30 W2       2 02:30:15 local 2024-04-10T02:30:15+05:30
Asia/Kolkata        2024-03-30T12:00:00+05:30 W2       2 02:30:15 local 2024-04-10T02:30:15+05:30
Asia/Kolkata        2024-03-31T00:00:00+05:30 W2       2 02:30:15 local 2024-04-10T02:30:15+05:30
Asia/Kolkata        2024-03-31T01:59:59+05:30 W2       2 02:30:15 local 2024-04-10T02:30:15+05:30
Asia/Kolkata        2024-03-31T03:00:00+05:30 W2       2 02:30:15 local 2024-04-10T02:30:15+05:30
Asia/Kolkata        2024-03-30T02:30:15+05:30 W0       1 00:00:00 local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-30T12:00:00+05:30 W0       1 00:00:00 local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-31T00:00:00+05:30 W0       1 00:00:00 local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-31T01:59:59+05:30 W0       1 00:00:00 local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-31T03:00:00+05:30 W0       1 00:00:00 local 2024-04-01T00:00:00+05:30
Asia/Kolkata        2024-03-30T02:30:15+05:30 H        3 -        local 2024-03-30T05:30:15+05:30
Asia/Kolkata        2024-03-30T12:00:00+05:30 H        3 -        local 2024-03-30T15:00:00+05:30
Asia/Kolkata        2024-03-31T00:00:00+05:30 H        3 -        local 2024-03-31T03:00:00+05:30
Asia/Kolkata        2024-03-31T01:59:59+05:30 H        3 -        local 2024-03-31T04:59:59+05:30
Asia/Kolkata        2024-03-31T03:00:00+05:30 H        3 -        local 2024-03-31T06:00:00+05:30
Asia/Kolkata        2024-03-30T02:30:15+05:30 MIDNIGHT 2 -        utc   2024-03-31T05:30:00+05:30
Asia/Kolkata        2024-03-30T12:00:00+05:30 MIDNIGHT 2 -        utc   2024-04-01T05:30:00+05:30
Asia/Kolkata        2024-03-31T00:00:00+05:30 MIDNIGHT 2 -        utc   2024-04-01T05:30:00+05:30
Asia/Kolkata        2024-03-31T01:59:59+05:30 MIDNIGHT 2 -        utc   2024-04-01T05:30:00+05:30
Asia/Kolkata        2024-03-31T03:00:00+05:30 MIDNIGHT 2 -        utc   2024-04-01T05:30:00+05:30
"""


def _rollover_rows(zone: str) -> list[tuple[int, str, int, datetime.time | None, bool, int]]:
    rows = []
    for line in ROLLOVERS.strip().splitlines():
        name, instant, when, interval, at, clock, expected = line.split()
        if name == zone:
            at_time = None if at == "-" else datetime.time.fromisoformat(at)
            rows.append(
                (
                    _instant(instant),
                    when,
                    int(interval),
                    at_time,
                    clock == "utc",
                    _instant(expected),
                )
            )
    return rows


ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
]


@pytest.mark.parametrize("zone", ZONES, indirect=True)
def test_compute_rollover_matches_cpython_313(zone: str, tmp_path: Path) -> None:
    rows = _rollover_rows(zone)
    assert len(rows) >= 45
    wrong = []
    for instant, when, interval, at_time, utc, expected in rows:
        handler = TimedRotatingFileHandler(
            tmp_path / "app.log", when=when, interval=interval, utc=utc, atTime=at_time, delay=True
        )
        got = handler.computeRollover(instant)
        if got != expected:
            wrong.append((when, interval, at_time, utc, instant, got, expected))
    assert wrong == []


@pytest.mark.parametrize("zone", ["UTC"], indirect=True)
@pytest.mark.parametrize(
    ("when", "interval", "expected"),
    [
        ("MIDNIGHT", 1, "2024-01-02T00:00:00+00:00"),
        ("MIDNIGHT", 3, "2024-01-04T00:00:00+00:00"),  # gh-90535: every 3 days, not every day
        # Weekly rollovers come at the midnight that ends the day; 2024-01-01 is a Monday.
        ("W0", 1, "2024-01-02T00:00:00+00:00"),
        ("W0", 2, "2024-01-09T00:00:00+00:00"),  # gh-90535: a week more
        ("W3", 1, "2024-01-05T00:00:00+00:00"),
        ("W3", 2, "2024-01-12T00:00:00+00:00"),  # gh-90535: a week more
    ],
)
def test_interval_counts_days_and_weeks_for_midnight_and_weekly(
    zone: str, tmp_path: Path, when: str, interval: int, expected: str
) -> None:
    handler = TimedRotatingFileHandler(tmp_path / "a.log", when=when, interval=interval, delay=True)
    assert handler.computeRollover(_instant("2024-01-01T10:00:00+00:00")) == _instant(expected)


@pytest.mark.parametrize("zone", ["UTC"], indirect=True)
def test_an_at_time_equal_to_now_rolls_over_tomorrow(zone: str, tmp_path: Path) -> None:
    handler = TimedRotatingFileHandler(
        tmp_path / "a.log", when="MIDNIGHT", atTime=datetime.time(9, 30), delay=True
    )
    now = _instant("2024-05-06T09:30:00+00:00")
    assert handler.computeRollover(now) == now + 24 * 3600  # never "now" itself


@pytest.mark.parametrize("zone", ["America/New_York"], indirect=True)
async def test_the_first_midnight_after_a_dst_change_is_local_midnight(
    zone: str, tmp_path: Path
) -> None:
    """gh-88352: a first rollover computed across the spring change is 00:00 EDT, not 01:00."""
    start = _instant("2024-03-10T00:30:00-05:00")  # the change comes at 02:00 that night
    handler = TimedRotatingFileHandler(
        tmp_path / "a.log", when="MIDNIGHT", delay=True, clock=lambda: start
    )
    assert handler.rolloverAt == _instant("2024-03-11T00:00:00-04:00")
    await handler.emit_batch([make_record(0, created=_instant("2024-03-10T23:59:00-04:00"))])
    await handler.emit_batch([make_record(1, created=_instant("2024-03-11T00:00:05-04:00"))])
    assert handler.rolloverAt == _instant("2024-03-12T00:00:00-04:00")
    await handler.close()
    assert (tmp_path / "a.log.2024-03-10").read_text() == "rec 0 \n"
    assert (tmp_path / "a.log").read_text() == "rec 1 \n"


NY_SPRING = 1710054000  # 2024-03-10 02:00 EST -> 03:00 EDT, minus a day or so below
NY_FALL = 1730613600  # 2024-11-03 02:00 EDT -> 01:00 EST

# Whole runs in America/New_York, written by CPython 3.13 reading a fake time.time() set to
# each record's creation time: every file, with the record numbers it holds ("from before" is
# the line the run found in the file).
RUNS: dict[str, tuple[dict[str, Any], float, float, int, dict[str, tuple[Any, ...]]]] = {
    "S every 2 s": (
        {"when": "S", "interval": 2, "backupCount": 3},
        1700000000.25,
        0.7,
        60,
        {
            "app.log": ((59, 59),),
            "app.log.2023-11-14_17-13-56": ((53, 54),),
            "app.log.2023-11-14_17-13-58": ((55, 57),),
            "app.log.2023-11-14_17-14-00": ((58, 58),),
        },
    ),
    "M, delay": (
        {"when": "m", "delay": True},
        1700000013.5,
        17.3,
        40,
        {
            "app.log": ((37, 39),),
            "app.log.2023-11-14_17-13": ((0, 2),),
            "app.log.2023-11-14_17-14": ((3, 6),),
            "app.log.2023-11-14_17-15": ((7, 10),),
            "app.log.2023-11-14_17-17": ((11, 14),),
            "app.log.2023-11-14_17-18": ((15, 18),),
            "app.log.2023-11-14_17-19": ((19, 22),),
            "app.log.2023-11-14_17-20": ((23, 25),),
            "app.log.2023-11-14_17-21": ((26, 28),),
            "app.log.2023-11-14_17-22": ((29, 33),),
            "app.log.2023-11-14_17-23": ((34, 36),),
        },
    ),
    "H with gaps": (
        {"when": "H", "backupCount": 4},
        1700000000.0,
        2900.0,
        30,
        {
            "app.log": ((29, 29),),
            "app.log.2023-11-15_13": ((23, 23),),
            "app.log.2023-11-15_14": ((24, 24),),
            "app.log.2023-11-15_15": ((25, 26),),
            "app.log.2023-11-15_17": ((27, 28),),
        },
    ),
    "D every 2 days": (
        {"when": "D", "interval": 2},
        1700000000.0,
        20000.0,
        40,
        {
            "app.log": ((36, 39),),
            "app.log.2023-11-14": ("from before", (0, 7)),
            "app.log.2023-11-16": ((8, 16),),
            "app.log.2023-11-18": ((17, 25),),
            "app.log.2023-11-21": ((26, 35),),
        },
    ),
    "midnight, spring DST": (
        {"when": "midnight", "backupCount": 3},
        1709854000,
        9000.0,
        60,
        {
            "app.log": ((59, 59),),
            "app.log.2024-03-11": ((31, 40),),
            "app.log.2024-03-12": ((41, 51),),
            "app.log.2024-03-13": ((52, 58),),
        },
    ),
    "midnight at 02:30, fall DST": (
        {"when": "MIDNIGHT", "atTime": datetime.time(2, 30)},
        1730413600,
        7000.0,
        70,
        {
            "app.log": ((64, 69),),
            "app.log.2024-10-31": ("from before", (0, 3)),
            "app.log.2024-11-01": ((4, 16),),
            "app.log.2024-11-02": ((17, 29),),
            "app.log.2024-11-03": ((30, 39),),
            "app.log.2024-11-04": ((40, 49),),
            "app.log.2024-11-05": ((50, 63),),
        },
    ),
    "midnight every 3 days": (
        {"when": "MIDNIGHT", "interval": 3},
        1709654000,
        30000.0,
        60,
        {
            "app.log": ((59, 59),),
            "app.log.2024-03-05": ("from before", (0, 6)),
            "app.log.2024-03-08": ((7, 14),),
            "app.log.2024-03-11": ((15, 22),),
            "app.log.2024-03-14": ((23, 33),),
            "app.log.2024-03-17": ((34, 42),),
            "app.log.2024-03-20": ((43, 52),),
            "app.log.2024-03-23": ((53, 58),),
        },
    ),
    "weekly W6, utc": (
        {"when": "W6", "utc": True, "backupCount": 2},
        1729713600,
        50000.0,
        60,
        {
            "app.log": ((57, 59),),
            "app.log.2024-11-11": ((33, 43),),
            "app.log.2024-11-18": ((44, 56),),
        },
    ),
    "weekly W2 local, delay": (
        {"when": "w2", "delay": True},
        1709154000,
        40000.0,
        60,
        {
            "app.log": ((49, 59),),
            "app.log.2024-02-22": ((0, 0),),
            "app.log.2024-02-29": ((1, 14),),
            "app.log.2024-03-07": ((15, 31),),
            "app.log.2024-03-14": ((32, 48),),
        },
    ),
    "weekly W4 every 2 weeks": (
        {"when": "W4", "interval": 2},
        1729113600,
        60000.0,
        70,
        {
            "app.log": ((50, 69),),
            "app.log.2024-10-12": ("from before", (0, 13)),
            "app.log.2024-10-26": ((14, 32),),
            "app.log.2024-11-09": ((33, 49),),
        },
    ),
}


def _timeline(start: float, steps: list[float]) -> list[logging.LogRecord]:
    records, now = [], start
    for index, step in enumerate(steps):
        now += step
        records.append(make_record(index, 3, created=now))
    return records


def _expected_text(spec: tuple[Any, ...]) -> bytes:
    lines = []
    for part in spec:
        if part == "from before":
            lines.append("from before\n")
        else:
            first, last = part
            lines.extend(f"rec {index} xxx\n" for index in range(first, last + 1))
    return "".join(lines).encode()


@pytest.mark.parametrize("zone", ["America/New_York"], indirect=True)
@pytest.mark.parametrize(
    ("options", "start", "step", "count", "files"), RUNS.values(), ids=RUNS.keys()
)
async def test_same_files_as_cpython_313_on_a_fake_clock(
    zone: str,
    tmp_path: Path,
    options: dict[str, Any],
    start: float,
    step: float,
    count: int,
    files: dict[str, tuple[Any, ...]],
) -> None:
    rnd = random.Random(count)
    records = _timeline(start, [step * rnd.uniform(0.2, 1.8) for _ in range(count)])
    if not options.get("delay"):
        # The first rollover counts from the file's mtime: a file from "start".
        (tmp_path / "app.log").write_text("from before\n")
        os.utime(tmp_path / "app.log", (start, start))
    handler = TimedRotatingFileHandler(tmp_path / "app.log", clock=lambda: start, **options)
    rnd = random.Random(count)
    for batch in batches(records, [rnd.choice((1, 3, 8, 40, 500)) for _ in range(30)]):
        await handler.emit_batch(batch)
    await handler.close()
    expected = {name: _expected_text(spec) for name, spec in files.items()}
    assert snapshot_dir(str(tmp_path)) == expected
    assert handler.error_count == 0


@pytest.mark.parametrize("zone", ["Europe/London"], indirect=True)
@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("H", "2024-03-31T02:46:40+01:00"),
        ("MIDNIGHT", "2024-04-01T00:00:00+01:00"),
        ("W3", "2024-04-05T00:00:00+01:00"),
    ],
)
def test_first_rollover_counts_from_the_existing_files_mtime(
    zone: str, tmp_path: Path, when: str, expected: str
) -> None:
    path = tmp_path / "app.log"
    path.write_text("old\n")
    mtime = 1_711_846_000  # just before London's 2024 spring change
    os.utime(path, (mtime, mtime))
    ours = TimedRotatingFileHandler(path, when=when, delay=True, clock=lambda: 5.0)
    assert ours.rolloverAt == _instant(expected)


NAMES = [
    "app.log",
    "app.log.2024-01-01",
    "app.log.2024-01-02.gz",
    "app.log.2024-01-03",
    "app.log.2024-01-04",
    "app.log.bak",
    "app.log.2024-1-05",
    "app.log.lock",
    "app.2024-01-06.log",
    "app.2024-01-07.log",
    "other.log.2024-01-01",
    "app.logx.2024-01-08",
    "app.log.2024-01-09_10",
    "app.log.b.2024-01-01",
    "app.log.2024-01-031",
]

# CPython 3.13's getFilesToDelete() in a folder of NAMES, when="D": (with the namer below?,
# backupCount) -> the files it deletes.
DELETIONS: dict[tuple[bool, int], list[str]] = {
    (False, 1): ["app.log.2024-01-01", "app.log.2024-01-03"],
    (False, 2): ["app.log.2024-01-01"],
    (False, 3): [],
    (False, 5): [],
    (False, 9): [],
    (True, 1): ["app.2024-01-06.log"],
    (True, 2): [],
    (True, 3): [],
    (True, 5): [],
    (True, 9): [],
}


def _dated_namer(name: str) -> str:
    """app.log.2024-01-06 -> app.2024-01-06.log"""
    return name.replace(".log.", ".") + ".log" if ".log." in name else name


@pytest.mark.parametrize(("named", "backup_count"), DELETIONS.keys())
def test_get_files_to_delete_matches_cpython_313(
    tmp_path: Path, backup_count: int, named: bool
) -> None:
    for name in NAMES:
        (tmp_path / name).write_text("x\n")
    ours = TimedRotatingFileHandler(
        tmp_path / "app.log", when="D", backupCount=backup_count, delay=True
    )
    if named:
        ours.namer = _dated_namer
    got = [os.path.basename(path) for path in ours.getFilesToDelete()]
    assert got == DELETIONS[named, backup_count]


def _utc(*fields: int) -> int:
    return calendar.timegm((*fields, 0, 0, 0))


async def test_retention_leaves_another_logs_backups_and_the_file_just_rotated(
    tmp_path: Path,
) -> None:
    """The case of issue #20: a.log.b.* belong to another log; a.log.2024-01-04 holds "x"."""
    for name in ("a.log.b.2024-01-01", "a.log.b.2024-01-02", "a.log.2024-01-02"):
        (tmp_path / name).write_text(name + "\n")
    handler = TimedRotatingFileHandler(tmp_path / "a.log", when="D", utc=True, backupCount=1)
    await handler.handle(make_record(0, msg="x", created=_utc(2024, 1, 4, 6)))
    handler.rolloverAt = _utc(2024, 1, 5, 5)
    await handler.handle(make_record(1, msg="y", created=_utc(2024, 1, 5, 6)))
    await handler.close()
    assert sorted(os.listdir(tmp_path)) == [
        "a.log",
        "a.log.2024-01-04",
        "a.log.b.2024-01-01",
        "a.log.b.2024-01-02",
    ]
    assert (tmp_path / "a.log.2024-01-04").read_text() == "x\n"
    assert (tmp_path / "a.log").read_text() == "y\n"


async def test_an_existing_rotated_file_is_never_overwritten(tmp_path: Path) -> None:
    """CPython 3.13 leaves app.log.2024-01-03 alone and keeps writing the log."""
    (tmp_path / "app.log.2024-01-03").write_text("an earlier run\n")
    start = _utc(2024, 1, 3, 1)
    handler = TimedRotatingFileHandler(
        tmp_path / "app.log", when="D", utc=True, delay=True, clock=lambda: start
    )
    await handler.emit_batch([make_record(0, created=start + 60)])
    await handler.emit_batch([make_record(1, created=_utc(2024, 1, 4, 2))])  # rollover due
    # loopsink moves on to the next interval (3.13 would try the same name for ever):
    assert handler.rolloverAt == _utc(2024, 1, 5, 2)
    await handler.emit_batch([make_record(2, created=_utc(2024, 1, 5, 3))])
    await handler.close()
    assert (tmp_path / "app.log.2024-01-03").read_text() == "an earlier run\n"
    assert (tmp_path / "app.log.2024-01-04").read_text() == "rec 0 \nrec 1 \n"
    assert (tmp_path / "app.log").read_text() == "rec 2 \n"


async def test_the_file_just_rotated_survives_a_clock_that_went_back(tmp_path: Path) -> None:
    """A backup named after a later day sorts last; pruning still spares the new file."""
    (tmp_path / "app.log.2030-01-01").write_text("from the future\n")
    (tmp_path / "app.log.2023-12-31").write_text("old\n")
    start = _utc(2024, 1, 3, 1)
    handler = TimedRotatingFileHandler(
        tmp_path / "app.log", when="D", utc=True, backupCount=1, delay=True, clock=lambda: start
    )
    await handler.emit_batch([make_record(0, created=start), make_record(1, created=start + 86400)])
    await handler.close()
    assert sorted(os.listdir(tmp_path)) == ["app.log", "app.log.2024-01-03", "app.log.2030-01-01"]
    assert (tmp_path / "app.log.2024-01-03").read_text() == "rec 0 \n"


async def test_a_subclass_rule_for_deletion_is_honoured_but_spares_the_new_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.log.old").write_text("chosen by the subclass\n")
    start = _utc(2024, 1, 3, 1)

    class Mine(TimedRotatingFileHandler):
        def getFilesToDelete(self) -> list[str]:
            rotated = os.path.join(tmp_path, "app.log.2024-01-03")
            return [os.path.join(tmp_path, "app.log.old"), rotated]

    handler = Mine(
        tmp_path / "app.log", when="D", utc=True, backupCount=1, delay=True, clock=lambda: start
    )
    await handler.emit_batch([make_record(0, created=start), make_record(1, created=start + 86400)])
    await handler.close()
    assert sorted(os.listdir(tmp_path)) == ["app.log", "app.log.2024-01-03"]


@pytest.mark.parametrize("kind", ["plain", "coroutine"])
async def test_retention_follows_the_namer(tmp_path: Path, kind: str) -> None:
    """Backups named by the namer count; a file the namer could not have made does not."""
    for name in ("app.2024-01-01.log", "app.2024-01-02.log", "app.log.2024-01-02", "app.x.log"):
        (tmp_path / name).write_text(name + "\n")
    start = _utc(2024, 1, 3, 1)
    handler = TimedRotatingFileHandler(
        tmp_path / "app.log", when="D", utc=True, backupCount=2, delay=True, clock=lambda: start
    )
    if kind == "plain":
        handler.namer = _dated_namer
    else:

        async def namer(name: str) -> str:
            return _dated_namer(name)

        handler.namer = namer
    await handler.emit_batch([make_record(0, created=start), make_record(1, created=start + 86400)])
    await handler.close()
    assert sorted(os.listdir(tmp_path)) == [
        "app.2024-01-02.log",
        "app.2024-01-03.log",
        "app.log",
        "app.log.2024-01-02",  # not a name the namer makes: not a backup
        "app.x.log",
    ]


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("X", r"when must be one of S, M, H, D, MIDNIGHT or W0-W6 \(any case\), got 'X'"),
        ("W7", r"weekly rollover needs a day from W0 \(Monday\) to W6 \(Sunday\), got when='W7'"),
        ("w", r"weekly rollover needs a day .*, got when='W'"),
        ("", r"when must be one of .*, got ''"),
    ],
)
def test_bad_when_is_a_clear_value_error(tmp_path: Path, when: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^TimedRotatingFileHandler {message}$"):
        TimedRotatingFileHandler(tmp_path / "app.log", when=when, delay=True)


def test_other_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    with pytest.raises(TypeError, match=r"when must be a str"):
        TimedRotatingFileHandler(path, when=3, delay=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"interval must be at least 1, got 0"):
        TimedRotatingFileHandler(path, interval=0, delay=True)
    with pytest.raises(TypeError, match=r"atTime must be a datetime.time or None"):
        TimedRotatingFileHandler(path, atTime="00:00", delay=True)  # type: ignore[arg-type]
    assert not path.exists()


async def test_gzip_keeps_backup_count_compressed_files(tmp_path: Path) -> None:
    start = 1_700_000_000.0
    handler = TimedRotatingFileHandler(
        tmp_path / "app.log",
        when="S",
        backupCount=2,
        delay=True,
        compress="gzip",
        clock=lambda: start,
    )
    records = _timeline(start, [1.0] * 6)
    for record in records:
        await handler.emit_batch([record])
    await handler.close()
    names = sorted(os.listdir(tmp_path))
    assert names == [
        "app.log",
        f"app.log.{time.strftime('%Y-%m-%d_%H-%M-%S', time.localtime(start + 4))}.gz",
        f"app.log.{time.strftime('%Y-%m-%d_%H-%M-%S', time.localtime(start + 5))}.gz",
    ]
    assert gzip.decompress((tmp_path / names[2]).read_bytes()) == b"rec 4 xxx\n"
    assert (tmp_path / "app.log").read_text() == "rec 5 xxx\n"


async def test_a_target_that_is_not_a_regular_file_is_never_rotated() -> None:
    start = 1_700_000_000.0
    handler = TimedRotatingFileHandler(os.devnull, when="S", clock=lambda: start)
    await handler.emit_batch(_timeline(start, [1.5] * 5))
    await handler.close()
    assert handler.error_count == 0
    assert handler.rolloverAt > start + 5  # the schedule moved on instead
    assert not os.path.isfile(os.devnull)  # still the device, not a rotated file


async def test_a_backlog_lands_in_the_file_of_its_creation_time(tmp_path: Path) -> None:
    """Records created before the boundary but written after it stay in the old file."""
    start = 1_700_000_000.0
    handler = TimedRotatingFileHandler(
        tmp_path / "app.log", when="M", delay=True, clock=lambda: start
    )
    late = [make_record(i, created=start + 59.9) for i in range(3)]
    fresh = [make_record(9, created=start + 60.0)]
    await handler.emit_batch(late + fresh)  # one batch that straddles the boundary
    await handler.close()
    rotated = tmp_path / f"app.log.{time.strftime('%Y-%m-%d_%H-%M', time.localtime(start))}"
    assert rotated.read_text().splitlines() == ["rec 0 ", "rec 1 ", "rec 2 "]
    assert (tmp_path / "app.log").read_text() == "rec 9 \n"


TIMED_WORKER = textwrap.dedent(
    """
    import logging, sys, time, anyio, anyio.lowlevel, loopsink

    path, worker, count, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    t0 = float(sys.argv[5])

    def speed_up(record):
        # A shared fast clock: 40 "seconds" of log time per real second, for every process.
        record.created = base + (time.time() - t0) * 40
        return True

    async def main():
        sink = loopsink.TimedRotatingFileHandler(
            path, when="S", backupCount=0, multiprocess=True, clock=lambda: base
        )
        logger = logging.getLogger("mp")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addFilter(speed_up)
        async with loopsink.install(sink, logger=logger, capacity=count) as queue:
            for i in range(count):
                logger.info("w%d r%d", worker, i)
                if i % 200 == 199:
                    await anyio.lowlevel.checkpoint()
        assert queue.stats.dropped_total == 0, queue.stats
        assert sink.error_count == 0

    anyio.run(main)
    """
)


@pytest.mark.slow
def test_processes_share_one_timed_file_and_rotate_each_interval_once(tmp_path: Path) -> None:
    processes, count = 3, 8000
    base = int(time.time())
    path = tmp_path / "app.log"
    path.write_text("")
    os.utime(path, (base, base))
    t0 = time.time()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", TIMED_WORKER, str(path), str(n), str(count), str(base), str(t0)]
        )
        for n in range(processes)
    ]
    for worker in workers:
        assert worker.wait(timeout=50) == 0
    seen: dict[str, int] = {}
    rotated = 0
    for name in os.listdir(tmp_path):
        if name.endswith(".lock"):
            continue
        rotated += name != "app.log"
        for line in (tmp_path / name).read_text().splitlines():
            seen[line] = seen.get(line, 0) + 1
    assert rotated >= 2  # the shared clock crossed several seconds
    assert len(seen) == processes * count  # no rotated file was replaced by a second rollover
    assert set(seen.values()) == {1}


async def test_max_age_prunes_by_modification_time_as_well(tmp_path: Path) -> None:
    start = 1_700_000_000.0
    handler = TimedRotatingFileHandler(
        tmp_path / "app.log", when="S", delay=True, max_age=600, clock=lambda: start
    )
    for record in _timeline(start, [1.0] * 3):  # two rollovers: two rotated files
        await handler.emit_batch([record])
    rotated = sorted(name for name in os.listdir(tmp_path) if name != "app.log")
    assert len(rotated) == 2
    stale = time.time() - 3600
    os.utime(tmp_path / rotated[0], (stale, stale))
    (tmp_path / "app.log.bak").write_text("a lookalike, never pruned\n")
    os.utime(tmp_path / "app.log.bak", (stale, stale))
    await handler.emit_batch(_timeline(start + 3, [1.0]))  # third rollover
    await handler.close()
    left = sorted(os.listdir(tmp_path))
    assert rotated[0] not in left
    assert rotated[1] in left
    assert "app.log.bak" in left
    assert len(left) == 4  # app.log, app.log.bak and two recent rotated files
