"""`owned_partitions` (services/dispatcher/assignment.py): the rooms' partitions split among the
live dispatcher replicas, each partition to exactly one, computed alike by every replica."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.dispatcher.assignment import owned_partitions, owner
from shared.positions import PARTITIONS, partition_prefix

replicas = st.lists(st.text("abcdef-0123456789", min_size=1, max_size=12), min_size=1, max_size=6)


@given(replicas)
def test_every_partition_is_served_by_exactly_one_live_replica(members: list[str]) -> None:
    shares = {m: owned_partitions(m, members) for m in set(members)}
    served = [p for share in shares.values() for p in share]
    assert sorted(served) == list(range(PARTITIONS))
    for member, share in shares.items():
        for partition in share:
            assert owner(partition_prefix(partition), set(members)) == member


def test_a_replica_alone_serves_every_partition_and_counts_itself() -> None:
    assert owned_partitions("solo", []) == set(range(PARTITIONS))
    assert owned_partitions("solo", ["solo"]) == set(range(PARTITIONS))


def test_a_replica_that_joins_takes_its_share_and_nothing_else_moves() -> None:
    before = {m: owned_partitions(m, ["a", "b"]) for m in ("a", "b")}
    after = {m: owned_partitions(m, ["a", "b", "c"]) for m in ("a", "b", "c")}
    for m in ("a", "b"):
        assert after[m] <= before[m]  # nothing moves between the replicas that stayed
    assert after["c"] == (before["a"] - after["a"]) | (before["b"] - after["b"])
