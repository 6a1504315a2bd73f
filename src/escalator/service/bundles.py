"""The fact lane's records of one worker batch, bundled: one record per destination partition.

Every decision sends the fact lane a record per metric group and per customer it touched (the
aggregates, the compliance periods, the re-contacts). On a busy stream that is more records
than the input itself — on the lifecycle benchmark 1.8 per input record — and each costs the
fact lane's agent a full trip through Faust and a state write. So the worker holds a batch's
fact records and sends them as bundles (`fact_codec.encode_bundle`): per partition of the
repartition topic, the records that would have gone there (the partition Kafka's default
partitioner gives their key), in their order, split so that no bundle exceeds `BUNDLE_BYTES`.
A key's records stay on the partition that holds its state and keep their order there; the
fact lane applies a bundle's records one after the other, each as a record of its own at the
bundle's offset (service/facts.py `FactProcessor.on_record`): its own size limit, dead letter
and replay check. Each record keeps its Kafka key in the bundle, so its dead letter is
replayed onto its own partition. A bundle's size is bounded here, not by the fact lane's
record limit (which each record inside meets, as it did on its own).

`simulate` has no partitions and applies each record as it is made; the fact lane reads both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from escalator.adapters.fact_codec import encode_bundle
from escalator.adapters.partitioning import partition_of
from escalator.service.processor import CUSTOMERS, Emission

# Far below the fact lane's record limit (ESCALATOR_MAX_RECORD_BYTES, 1 MiB by default) and
# Kafka's default 1 MB: a burst of thousands of fired deadlines still fits, in several bundles.
BUNDLE_BYTES: Final = 256 * 1024
BUNDLE_KEY: Final = b"__escalator_facts__"  # placement is by partition, not by this key


def bundle(
    records: Sequence[Emission], partitions: int, limit: int = BUNDLE_BYTES
) -> list[Emission]:
    """The fact records of a batch as bundles, one or more per destination partition, each
    naming its partition; records keep their order within a partition."""
    chunks: dict[int, list[list[Emission]]] = {}
    sizes: dict[int, int] = {}
    for record in records:
        target = partition_of(record.key.decode(), partitions)
        held = chunks.setdefault(target, [[]])
        if held[-1] and sizes[target] + len(record.value) > limit:
            held.append([])
            sizes[target] = 0
        held[-1].append(record)
        sizes[target] = sizes.get(target, 0) + len(record.value) + 1
    return [
        Emission(
            CUSTOMERS,
            BUNDLE_KEY,
            encode_bundle([(r.key, r.value) for r in chunk]),
            time=max(r.time for r in chunk),
            partition=target,
        )
        for target in sorted(chunks)
        for chunk in chunks[target]
    ]
