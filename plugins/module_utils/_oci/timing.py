# Private module_utils of ocireg.registry: not a public API, may change without notice.
# Copyright: contributors to ocireg.registry
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Durations (``30d``, ``12h``, ``1w3d``) and the RFC 3339 times that image configs write."""

from __future__ import annotations

import datetime
import re

from ansible_collections.ocireg.registry.plugins.module_utils._errors import InvalidInputError

UTC = datetime.timezone.utc
OLDEST = datetime.datetime.min.replace(tzinfo=UTC)
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"(?:[0-9]+[smhdw])+")
_DURATION_PART = re.compile(r"([0-9]+)([smhdw])")
_DURATION_FORM = (
    "expected a whole number followed by a unit, s (seconds), m (minutes), h (hours), d (days) or w (weeks),"
    " such as '30d', '12h' or '90m'; units can be combined, as in '1w3d'"
)

# RFC 3339 as image configs write it (Go's time.Time: up to nanoseconds, 'Z' or an offset).
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"\s*(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))?"
)


def parse_duration(value: object, option: str = "retention.older_than") -> datetime.timedelta:
    """``'30d'``, ``'12h'``, ``'90m'``, ``'45s'``, ``'2w'`` or a combination such as ``'1w3d'``."""
    text = value.strip() if isinstance(value, str) else None
    if not text or not _DURATION.fullmatch(text):
        raise InvalidInputError("%s %r is not a duration: %s." % (option, value, _DURATION_FORM))
    try:
        return sum(
            (
                datetime.timedelta(**{DURATION_UNITS[unit]: int(number)})
                for number, unit in _DURATION_PART.findall(text)
            ),
            datetime.timedelta(),
        )
    except OverflowError:
        raise InvalidInputError(
            "%s %r is too long a duration: the longest is %d days." % (option, value, datetime.timedelta.max.days)
        ) from None


def parse_time(value: object) -> datetime.datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime; None when missing or not a timestamp.

    Python 3.9's ``fromisoformat`` reads neither ``Z`` nor nanoseconds, both common in image configs.
    A timestamp without an offset is taken as UTC, and so is a naive datetime.
    """
    if isinstance(value, datetime.datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    found = _TIMESTAMP.fullmatch(value.strip())
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, _zulu, sign, offset_hours, offset_minutes = found.groups()
    try:
        microsecond = int((fraction or "0")[:6].ljust(6, "0"))
        offset = datetime.timedelta(0)
        if sign:
            offset = datetime.timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
            offset = -offset if sign == "-" else offset
        zone = datetime.timezone(offset)
        moment = datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59), microsecond, tzinfo=zone
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
