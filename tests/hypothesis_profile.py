"""Hypothesis's settings for this suite, loaded as a pytest plugin (`-p tests.hypothesis_profile`
in pyproject.toml).

The suite runs on a 2-core machine shared with the services it starts (and, in `make test`, with
a second pytest worker), so how long one example takes says nothing about the code under test:
a loaded machine failed `tests/registry/test_prefix.py` with `HealthCheck.too_slow` ("only 5
valid inputs after 1.08 seconds"). The time-based checks are off (`deadline`, `too_slow`); the
number of examples, every other health check and every assertion stay as they are.
`HYPOTHESIS_PROFILE=default` runs with Hypothesis's own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["PROFILE"]

PROFILE = "shared-machine"

settings.register_profile(PROFILE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", PROFILE))
