"""bench/chaos/schedule.py: the chaos run's faults, drawn from a seed."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.chaos.schedule import HOLDS, KINDS, group, plan

SERVICES = ["chat-0", "chat-1", "registry-0", "registry-1", "dispatcher-0", "dispatcher-1"]


def test_the_same_seed_gives_the_same_faults_and_another_seed_others() -> None:
    assert plan(7, 300, 4, SERVICES, 3) == plan(7, 300, 4, SERVICES, 3)
    assert plan(7, 300, 4, SERVICES, 3) != plan(8, 300, 4, SERVICES, 3)


@given(
    st.integers(0, 2**32),
    st.floats(1, 600),
    st.floats(0.5, 20),
    st.lists(st.sampled_from(SERVICES), min_size=1, unique=True),
    st.integers(1, 5),
)
def test_faults_are_sorted_within_the_run_and_hit_targets_of_their_kind(
    seed: int, seconds: float, interval: float, services: list[str], nodes: int
) -> None:
    faults = plan(seed, seconds, interval, services, nodes)
    assert [f.at for f in faults] == sorted(f.at for f in faults)
    for fault in faults:
        assert 0 <= fault.at < seconds
        low, high = HOLDS[fault.kind]
        assert low <= fault.hold <= high
        target_kind = KINDS[fault.kind][1]
        if target_kind == "service":
            assert fault.target in services
        else:
            name, index = fault.target.split("-")
            assert name == target_kind and 0 <= int(index) < nodes


def test_a_five_minute_run_has_every_kind_and_about_one_fault_per_interval() -> None:
    faults = plan(1, 300, 4, SERVICES, 3)
    assert 50 <= len(faults) <= 110
    kinds = Counter(f.kind for f in faults)
    assert set(kinds) == set(KINDS)
    assert kinds["sigkill"] > kinds["proxy-cut"]  # weights 3 and 2 over ~75 draws
    assert {f.target for f in faults if f.kind in ("sigkill", "sigterm")} == set(SERVICES)


def test_groups_take_turns_per_service_kind_and_for_all_nats_nodes() -> None:
    assert group("chat-1") == group("chat-0") == "chat"
    assert group("dispatcher-1") == "dispatcher"
    assert group("nats-2") == group("nats-0") == "nats"
    assert group("proxy-2") == "proxy-2" != group("proxy-1")


@pytest.mark.parametrize(
    ("seconds", "interval", "services", "nodes"),
    [(0, 4, SERVICES, 3), (10, 0, SERVICES, 3), (10, 4, [], 3), (10, 4, SERVICES, 0)],
)
def test_a_plan_of_nothing_is_refused(
    seconds: float, interval: float, services: list[str], nodes: int
) -> None:
    with pytest.raises(ValueError):
        plan(1, seconds, interval, services, nodes)
