"""Topics in the engine: the outcome of a carried vote moves its voters' satisfaction."""
from types import SimpleNamespace

import numpy as np
import pytest

import twin
from twin.engine.topics import FEEL_LOST, FEEL_WON


@pytest.fixture
def topics():
    tw = twin.Twin(twin.load_scenario("default", ["community.households=40", "community.buildings=1",
                                                  "sim.days=1", "progress=false"]))
    return tw.topics, tw.experience


@pytest.mark.parametrize("carried,winner,expected", [
    (True, 1, [FEEL_WON, FEEL_LOST, FEEL_WON]),   # first choices 1, 0, 1
    (True, -1, [0, 0, 0]),                         # a tie moves nobody
    (False, 1, [0, 0, 0]),                         # nor does a topic that was not carried
])
def test_voters_feel_the_outcome_of_their_first_choice(topics, carried, winner, expected):
    cycle, experience = topics
    cycle._first_choices[7] = [(np.array([0, 1]), np.array([1, 0])), (np.array([2]), np.array([1]))]
    cycle._feel_outcome(7, SimpleNamespace(carried=carried, winner=winner))
    assert experience[:3].tolist() == pytest.approx(expected)
    assert 7 not in cycle._first_choices  # each topic is felt once


def test_the_engine_shares_its_experience_array_with_the_topics(topics):
    cycle, experience = topics
    assert cycle.experience is experience
