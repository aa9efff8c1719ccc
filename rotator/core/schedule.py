"""NCRONTAB expressions as the Azure Functions timer trigger reads them: six fields, seconds first.

The host parses `ROTATOR_SCHEDULE` itself (NCrontab), and a bad expression only shows up there as a
function that never runs. Checking it at start, field by field, turns that into an error that names
the field. `occurrences` says when it fires, for the health check (is the last scan overdue?).
Stricter than NCrontab where NCrontab guesses: it swaps a reversed range and treats a step
of 0 as 1; both are refused here, since they are almost certainly typos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


class ScheduleError(ValueError):
    """The expression is not a six-field NCRONTAB expression; the message names the field."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # full English names, value = low + index; a 3+ letter prefix is accepted

    def value(self, text: str) -> int:
        if text.isdigit():
            number = int(text)
            if not self.low <= number <= self.high:
                raise ScheduleError(f"field {self.name!r} ({text}) is out of range {self.low}-{self.high}")
            return number
        word = text.lower()
        for index, name in enumerate(self.names):
            if len(word) >= 3 and name.lower().startswith(word):
                return self.low + index
        known = f"a number {self.low}-{self.high}" + (" or a name such as " + self.names[0][:3] if self.names else "")
        raise ScheduleError(f"field {self.name!r} ({text}) is not {known}")


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
FIELDS: tuple[_Field, ...] = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 6, _DAYS),
)
# One list item: `*`, `v` or `a-b`, each with an optional `/step`.
_ITEM = re.compile(r"(?P<base>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>\d+))?", re.ASCII)


def validate_schedule(expression: str) -> None:
    """Raise ScheduleError unless `expression` is a valid six-field NCRONTAB expression."""
    parts = expression.split()
    if len(parts) != len(FIELDS):
        raise ScheduleError(f"expected six fields (second minute hour day month day-of-week), got {len(parts)}")
    for field, part in zip(FIELDS, parts, strict=True):
        for item in part.split(","):
            _check_item(field, item)


def _check_item(field: _Field, item: str) -> None:
    match = _ITEM.fullmatch(item)
    if not match:
        raise ScheduleError(f"field {field.name!r} ({item or 'empty'}) is not *, a value, a range a-b, "
                            f"or one of those with /step")
    step = match["step"]
    if step is not None and int(step) == 0:
        raise ScheduleError(f"field {field.name!r} ({item}) has a step of 0")
    base = match["base"]
    if base == "*":
        return
    first, _, last = base.partition("-")
    low = field.value(first)
    if last and field.value(last) < low:
        raise ScheduleError(f"field {field.name!r} ({item}) is a reversed range")


# --- when it runs ------------------------------------------------------------------------------------

SEARCH_YEARS = 5  # a schedule that names no day within five years (say, 30 February) has no next occurrence


def occurrences(expression: str, after: datetime, count: int) -> list[datetime]:
    """The next `count` moments (UTC, whole seconds) strictly after `after` at which the schedule fires.

    NCrontab's rules: a moment fires when every field matches it, day and day-of-week both (not either, as
    in Unix cron); day-of-week 0 is Sunday. Fewer than `count` when the schedule fires less often than that
    within SEARCH_YEARS."""
    validate_schedule(expression)
    seconds, minutes, hours, days, months, weekdays = (_values(field, part) for field, part
                                                        in zip(FIELDS, expression.split(), strict=True))
    start = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    found: list[datetime] = []
    day = start.date()
    for _ in range(366 * SEARCH_YEARS):
        if day.day in days and day.month in months and (day.weekday() + 1) % 7 in weekdays:
            for hour in hours:
                for minute in minutes:
                    for second in seconds:
                        moment = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
                        if moment >= start:
                            found.append(moment)
                            if len(found) == count:
                                return found
        day += timedelta(days=1)
    return found


def _values(field: _Field, part: str) -> list[int]:
    """Every value one field allows, ascending: `*`, `v`, `a-b`, each with an optional `/step`."""
    allowed: set[int] = set()
    for item in part.split(","):
        match = _ITEM.fullmatch(item)
        assert match is not None  # validate_schedule checked it
        step = int(match["step"] or 1)
        base = match["base"]
        if base == "*":
            low, high = field.low, field.high
        else:
            first, _, last = base.partition("-")
            low = field.value(first)
            high = field.value(last) if last else (field.high if match["step"] else low)
        allowed.update(range(low, high + 1, step))
    return sorted(allowed)
