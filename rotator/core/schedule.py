"""NCRONTAB expressions as the Azure Functions timer trigger reads them: six fields, seconds first.

The host parses `ROTATOR_SCHEDULE` itself (NCrontab), and a bad expression only shows up there as a
function that never runs. Checking it at start, field by field, turns that into an error that names
the field. Stricter than NCrontab where NCrontab guesses: it swaps a reversed range and treats a step
of 0 as 1; both are refused here, since they are almost certainly typos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


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
