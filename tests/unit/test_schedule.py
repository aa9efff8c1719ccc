"""ROTATOR_SCHEDULE validation (rotator/core/schedule.py): NCRONTAB fields and ranges, errors naming the field.

croniter (a maintained cron parser, dev dependency) is the second opinion: whatever we accept, it accepts
with six fields and seconds first.
"""

from __future__ import annotations

import re

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from rotator.core.schedule import FIELDS, ScheduleError, validate_schedule
from rotator.settings import Settings, SettingsError

VALID = [
    "0 0 */6 * * *",
    "0 */5 * * * *",
    "*/30 * * * * *",
    "0 30 9 * Jan Mon",
    "0 0 9-17 1,15 1-6/2 Mon-Fri",
    "0 0 0 1 January *",
    "59 59 23 31 12 6",
    "0 0 0 * * Sunday",
    "0 0 5/2 * * *",
    "0 0 0 * * sat",
]

INVALID = [
    ("99 99 99 99 99 99", "field 'second' (99) is out of range 0-59"),
    ("0 99 * * * *", "field 'minute' (99) is out of range 0-59"),
    ("0 0 99 * * *", "field 'hour' (99) is out of range 0-23"),
    ("0 0 0 0 * *", "field 'day' (0) is out of range 1-31"),
    ("0 0 0 32 * *", "field 'day' (32) is out of range 1-31"),
    ("0 0 0 * 13 *", "field 'month' (13) is out of range 1-12"),
    ("0 0 0 * * 7", "field 'day-of-week' (7) is out of range 0-6"),
    ("*/0 * * * * *", "field 'second' (*/0) has a step of 0"),
    ("0 0 1-5/0 * * *", "field 'hour' (1-5/0) has a step of 0"),
    ("0 0 17-9 * * *", "field 'hour' (17-9) is a reversed range"),
    ("0 0 0 * * Fri-Mon", "field 'day-of-week' (Fri-Mon) is a reversed range"),
    ("0 0 0 * Foo *", "field 'month' (Foo) is not a number 1-12 or a name such as Jan"),
    ("0 0 0 * Ja *", "field 'month' (Ja) is not a number 1-12"),
    ("0 0 Mon * * *", "field 'hour' (Mon) is not a number 0-23"),
    ("0 0 */x * * *", "field 'hour' (*/x) is not *, a value, a range a-b"),
    ("0 0 1,,2 * * *", "field 'hour' (empty) is not *"),
    ("0 0 ? * * *", "field 'hour' (?) is not *"),
    ("0 0 L * * *", "field 'hour' (L) is not a number 0-23"),
    ("0 */5 * * *", "expected six fields (second minute hour day month day-of-week), got 5"),
    ("0 0 */6 * * * *", "expected six fields"),
    ("00:05:00", "expected six fields"),
    ("", "expected six fields"),
]


@pytest.mark.parametrize("expression", VALID)
def test_valid_schedules_are_accepted(expression: str) -> None:
    validate_schedule(expression)
    if not re.search(r"[A-Za-z]{4,}", expression):  # NCrontab also takes full names (January); croniter does not
        assert croniter.is_valid(expression, second_at_beginning=True)


@pytest.mark.parametrize(("expression", "message"), INVALID, ids=[e or "empty" for e, _ in INVALID])
def test_invalid_schedules_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        validate_schedule(expression)
    assert message in str(caught.value)


def test_the_setting_error_names_the_setting_and_the_field() -> None:
    env = {"ROTATOR_REGISTRIES": "/subscriptions/0000", "ROTATOR_VAULT_URL": "https://kv.vault.azure.net/",
           "ROTATOR_SCHEDULE": "0 0 99 * * *"}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith("ROTATOR_SCHEDULE: field 'hour' (99) is out of range 0-23")


def _field_item(index: int) -> st.SearchStrategy[str]:
    """Items of one field, in and around its range, with and without steps."""
    field = FIELDS[index]
    number = st.integers(min_value=max(field.low - 1, 0), max_value=field.high + 1).map(str)
    base = st.one_of(st.just("*"), number, st.tuples(number, number).map("-".join))
    step = st.one_of(st.just(""), st.integers(min_value=0, max_value=field.high + 1).map(lambda s: f"/{s}"))
    return st.tuples(base, step).map("".join)


_EXPRESSIONS = st.tuples(*[st.lists(_field_item(i), min_size=1, max_size=3).map(",".join)
                           for i in range(len(FIELDS))]).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(_EXPRESSIONS)
def test_whatever_we_accept_croniter_accepts(expression: str) -> None:
    try:
        validate_schedule(expression)
    except ScheduleError:
        return
    assert croniter.is_valid(expression, second_at_beginning=True), expression


@settings(max_examples=200, deadline=None)
@given(st.tuples(*[st.integers(min_value=0, max_value=99) for _ in FIELDS]))
def test_single_values_follow_the_field_ranges(values: tuple[int, ...]) -> None:
    expression = " ".join(map(str, values))
    in_range = all(field.low <= value <= field.high for field, value in zip(FIELDS, values, strict=True))
    if in_range:
        validate_schedule(expression)
    else:
        with pytest.raises(ScheduleError, match="is out of range"):
            validate_schedule(expression)
