"""Hypothesis profiles for the whole suite, chosen with ``HYPOTHESIS_PROFILE``.

- ``default``: Hypothesis' own settings; slow integration properties cap their own example
  count (``tests/integration/test_no_loss.py``) so ``make test`` stays quick.
- ``soak`` (``make soak``): at least 500 examples in all (``scripts/soak.sh`` runs them as
  parallel shards), no deadline (one example runs several real
  syncs), no health check about slow data generation, and a printed blob to replay a failure.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "soak",
    # scripts/soak.sh splits its 500 examples over shards and gives each its share.
    max_examples=int(os.environ.get("SOAK_SHARD_EXAMPLES", "500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
