"""The engine's event log is pinned: the default scenario's log hashes as it did before the day
was fused into fewer compiled calls (issue 13: faster, but not a byte of the log changed).

The hashes were recorded from the engine as it stood before that work; a change to the engine
that moves any event, time or amount fails here.  A deliberate change of a rule (not of speed)
records new hashes and says so in its commit.
"""
import hashlib

import pytest

import twin

#: (overrides of the default scenario, sha256 of the event log's bytes, number of events)
PINNED = {
    "300 households x 60 days": (["community.households=300", "community.buildings=6", "sim.days=60"],
                                 "94d9dff59bd08e06f25e0c4c22fdffe9032f613d544a9d2b209f75ff8b49e7df", 4834),
    "default community x 30 days": (["sim.days=30"],
                                    "a4e20f950c83eaa01e6721a06dac80e1aed38bb005c19fd4425cd51131b06755", 22817),
}


def log_of(overrides):
    return twin.Twin(twin.load_scenario("default", [*overrides, "progress=false"])).run().event_log


@pytest.mark.parametrize("size", list(PINNED))
def test_event_log_hash_is_unchanged(size):
    overrides, digest, n_events = PINNED[size]
    log = log_of(overrides)
    assert len(log) == n_events
    assert hashlib.sha256(log.tobytes()).hexdigest() == digest


def test_the_hash_sees_a_one_unit_change():
    """Mutation check: one event's amount off by one changes the hash, so the test above can fail."""
    overrides, digest, _ = PINNED["300 households x 60 days"]
    log = log_of(overrides).copy()
    log["amount"][len(log) // 2] += 1
    assert hashlib.sha256(log.tobytes()).hexdigest() != digest
