"""Which partition a record belongs on, and the header a forwarded record carries.

escalator keeps a ticket's (an incident's) state on the partition of `tickets.events`
(`monitoring.alerts`) its id hashes to with Kafka's default partitioner for keyed records:
murmur2 of the key's UTF-8 bytes, made positive, modulo the partition count (the Java client's
`Utils.toPositive(Utils.murmur2(key)) % numPartitions`, which aiokafka and escalator's HTTP
doors use too). A record that arrives elsewhere — no key (the CloudEvents SDKs' Kafka binding
sets none without a `partitionkey`), or placed by another partitioner (librdkafka's and so
kcat's default `consistent_random` is CRC32) — is forwarded there (docs/architecture.md,
"Records on the wrong partition"), carrying its first arrival in `ARRIVAL_HEADER`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from escalator.errors import InvalidEvent

# A forwarded record's first arrival (broker time of the record it copies), epoch ms in ASCII.
ARRIVAL_HEADER: Final = "escalator-arrival"
# How far before a copy's own broker timestamp its first arrival may lie. A copy trails its
# original by the lag of the worker that forwarded it: milliseconds when it keeps up, hours
# after an outage (a backlog is forwarded as it is read). The bound is what a header can win:
# anyone who can write to the topic can set it, and it moves the clock the event is checked
# against (`time_too_old`, 400 days). A day covers a worker down overnight and lets a forged
# header gain a day at most; an older one is refused `invalid_field`.
MAX_FORWARD_DELAY_MS: Final = 24 * 3_600_000
_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (seed 0x9747b28c), as a signed 32-bit int like the Java client."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = length % 4
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` among `partitions`."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


def encode_arrival(arrival: int) -> tuple[str, bytes]:
    return ARRIVAL_HEADER, str(arrival).encode("ascii")


def is_copy(headers: Iterable[tuple[str, bytes]]) -> bool:
    """Whether a record is a forwarded copy (it carries `ARRIVAL_HEADER`)."""
    return any(name == ARRIVAL_HEADER for name, _ in headers)


def arrival_of(headers: Iterable[tuple[str, bytes]], arrival: int) -> int:
    """The arrival of a record: the first arrival a forwarded copy carries, else `arrival`
    (its own broker time). Never later than its own: a header cannot move time forward; and
    at most `MAX_FORWARD_DELAY_MS` earlier. InvalidEvent naming the header when it is not a
    non-negative integer or lies further back."""
    for name, value in headers:
        if name != ARRIVAL_HEADER:
            continue
        text = value.decode("ascii", "replace")
        if not text.isdigit() or len(text) > 15:
            raise InvalidEvent(
                "invalid_field",
                f"header {ARRIVAL_HEADER} {text[:20]!r} must be epoch milliseconds (escalator "
                "sets it when it forwards a record; producers must not)",
            )
        first = int(text)
        if first < arrival - MAX_FORWARD_DELAY_MS:
            hours = MAX_FORWARD_DELAY_MS // 3_600_000
            raise InvalidEvent(
                "invalid_field",
                f"header {ARRIVAL_HEADER} is {(arrival - first) // 60_000} min before the "
                f"record's own timestamp; a forwarded copy trails its original by at most "
                f"{hours} h (escalator sets this header when it forwards; producers must not)",
            )
        return min(first, arrival)
    return arrival
