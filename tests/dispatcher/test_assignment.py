"""Assignment of registrations to live dispatcher replicas (rendezvous hashing), no I/O."""

from __future__ import annotations

import re

from services.dispatcher.assignment import new_replica_id, owned, owner

SUBS = [f"sub_{n:04d}" for n in range(1000)]


def test_every_registration_has_exactly_one_owner() -> None:
    members = ["a", "b", "c"]
    shares = [owned(m, SUBS, members) for m in members]
    assert set().union(*shares) == set(SUBS)
    assert sum(len(s) for s in shares) == len(SUBS)
    assert all(200 < len(s) < 466 for s in shares), [len(s) for s in shares]


def test_owner_does_not_depend_on_member_order() -> None:
    assert all(owner(s, ["a", "b", "c"]) == owner(s, ["c", "a", "b"]) for s in SUBS)


def test_only_the_dead_replicas_work_moves() -> None:
    before = {s: owner(s, ["a", "b", "c"]) for s in SUBS}
    after = {s: owner(s, ["a", "c"]) for s in SUBS}
    moved = {s for s in SUBS if before[s] != after[s]}
    assert moved == {s for s in SUBS if before[s] == "b"}


def test_a_replica_alone_owns_everything_and_counts_itself() -> None:
    assert owned("a", SUBS, []) == set(SUBS)
    assert owner("x", []) is None


def test_replica_ids_are_kv_keys_and_unique() -> None:
    ids = {new_replica_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[-_=a-zA-Z0-9]+", i) for i in ids)
