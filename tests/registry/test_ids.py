"""The id format of shared/ids.py: the store makes it, the registry checks it, /docs shows it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.registry.ids import EXAMPLE_ID
from shared.ids import ID_LENGTH, ID_PREFIX, is_subscription_id
from shared.subscriptions import subscription_id


@given(st.text(max_size=50), st.text(max_size=50))
def test_every_id_the_store_makes_has_the_format(room: str, url: str) -> None:
    sub_id = subscription_id(room, url)
    assert is_subscription_id(sub_id)
    assert len(sub_id) == len(ID_PREFIX) + ID_LENGTH


def test_other_shapes_are_not_ids() -> None:
    assert is_subscription_id(EXAMPLE_ID)
    for other in (
        "",
        "sub_",
        EXAMPLE_ID.upper(),
        EXAMPLE_ID[:-1],
        EXAMPLE_ID + "a",
        EXAMPLE_ID.replace("sub_", "sup_"),
        EXAMPLE_ID[:-1] + "1",  # not base32
        EXAMPLE_ID + "\n",
    ):
        assert not is_subscription_id(other), other
