"""A registration's `since` (docs/registry-api.md, "Replay"): the point after which it starts,
read from what the integrator sent, and where in the events stream that puts it. No I/O.

`since` is either a `webhook-id` (`<subscription id>_<stream sequence>`: every event a callback
received names its own place in the stream) or an RFC 3339 time. A webhook-id needs no lookup;
a time is turned into a sequence by one direct get (`shared/replay.py`). Either way the point is
then held between the oldest event the stream still holds and its last one, so a registration
never starts before what can be read, nor after what is already stored (which would skip
events accepted before its 201).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.ids import ID_LENGTH, ID_PREFIX

__all__ = ["SEQ_MAX", "Since", "parse_since", "rfc3339", "start_point"]

SEQ_MAX = 2**63 - 1  # JetStream sequences are unsigned 64-bit; we never see one this high

_WEBHOOK_ID = re.compile(f"{ID_PREFIX}[a-z2-7]{{{ID_LENGTH}}}_([0-9]{{1,19}})")
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


@dataclass(frozen=True, slots=True)
class Since:
    """Exactly one of the two is set."""

    seq: int | None = None  # after this stream sequence (from a webhook-id)
    time: datetime | None = None  # from this instant on (aware, UTC)


def parse_since(text: str) -> Since:
    """A webhook-id or an RFC 3339 time with an offset; ValueError with a clear message for
    anything else."""
    found = _WEBHOOK_ID.fullmatch(text)
    if found is not None:
        seq = int(found.group(1))
        if not 0 < seq <= SEQ_MAX:
            raise ValueError("the sequence of a webhook-id is a positive 64-bit integer")
        return Since(seq=seq)
    stamp = _RFC3339.fullmatch(text)
    if stamp is None:
        raise ValueError(
            "since must be a webhook-id (sub_..._<sequence>) or an RFC 3339 time with an "
            "offset, e.g. 2026-11-25T16:18:42Z"
        )
    day, clock, fraction, offset = stamp.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    micro = f".{(fraction or '')[:6]:0<6}"
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}{micro}{offset}")
    except ValueError:
        raise ValueError("since is not a valid RFC 3339 time") from None
    try:
        return Since(time=moment.astimezone(UTC))
    except OverflowError:
        raise ValueError("since is not a valid RFC 3339 time") from None


def start_point(after: int, first_seq: int, last_seq: int) -> int:
    """The `start_seq` for a registration asked to start after sequence `after`, when the
    stream holds `first_seq`..`last_seq`: not before the oldest held event (so an old `since`
    starts at the oldest, and is not counted as events lost), not after the last stored one."""
    return max(min(after, last_seq), first_seq - 1, 0)


def rfc3339(moment: datetime | float, digits: int = 3) -> str:
    """A moment (aware, or unix time) as RFC 3339 in UTC with `digits` fractional digits
    (0-6): `2026-11-25T16:18:42.123Z`."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    stamp = moment.astimezone(UTC).isoformat(timespec="microseconds")
    head, _, micro = stamp.removesuffix("+00:00").partition(".")
    return f"{head}.{micro[:digits]}Z" if digits else f"{head}Z"
