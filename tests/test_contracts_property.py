"""Same rules, proved: the time-bank service and the contract decide every command alike.

One random sequence of commands (registrations with valid and invalid roles, records,
confirmations, cancellations, disputes and their resolution, floors, endowments, family transfers,
overdraw attempts, commands by strangers and by the wrong member) goes to
``twin.services.timebank.TimeBank`` and to ``TimeBankContract`` through the same single-command
API.  After every step both must have accepted, or refused with the same reason, returned the
same record id, and hold the same balance for every id in play.

The embedded EVM runs 60-140 transactions a second, so example counts stay modest.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from contracts.chain import Chain
from contracts.timebank import TimeBankContract
from twin.services.reasons import Reason, ServiceError
from twin.services.timebank import RecordStatus, TimeBank, TimeBankPolicy

#: 0 admin, 1 endowment, 2-6 would-be members (2 a coordinator), 7 a stranger, -1 an id no
#: service would register.
IDS = list(range(-1, 8))

#: mostly members, so that commands get past the first checks; sometimes anyone at all
who = st.sampled_from([2, 3, 4, 5, 6] * 4 + IDS)
#: whom the admin's commands target: members, and often the admin and the endowment themselves
target = st.sampled_from([2, 3, 4, 5, 6] * 2 + [0, 1] * 2 + IDS)
#: the default actor (admin or provider) mostly; anyone else sometimes
by = st.one_of(st.none(), st.none(), who)
#: multiples of ten, like the floors, so that balances often land exactly on a floor
minutes = st.sampled_from([10, 20, 30, 60] * 3 + [0, -5, 7])
floors = st.sampled_from([0, -10, -20, -30, -60, -120, 5])


class Recent(int):
    """A record id counted back from the newest record (0: the newest), fixed when the command runs."""


class Party(str):
    """The provider or the receiver of the command's record, fixed when the command runs."""


class LastDisputed(int):
    """The newest disputed record (the newest record when none is), fixed when the command runs."""


PROVIDER, RECEIVER = Party("provider"), Party("receiver")
STRANGER = 7

#: mostly recent records, sometimes ids that do not exist
records = st.sampled_from([Recent(0)] * 4 + [Recent(1)] * 2 + [Recent(2), -1, 40])
#: who settles a record: its parties most often, staff (admin 0, coordinator 2) and anyone else too
settler = st.sampled_from([RECEIVER] * 3 + [PROVIDER] * 2 + [0, 2] * 2 + IDS)
#: resolutions: mostly of a disputed record, mostly by staff
disputed = st.sampled_from([LastDisputed()] * 6 + [Recent(0), -1, 40])
staff = st.sampled_from([0, 2] * 4 + [RECEIVER, PROVIDER] + IDS)


def concrete(kwargs: dict, service: TimeBank) -> dict:
    """The command's arguments with their placeholders (record and party) filled in from ``service``."""
    record = kwargs.get("record")
    if isinstance(record, LastDisputed):
        open_disputes = np.flatnonzero(service.records[: service.n_records, 4] == RecordStatus.disputed)
        record = int(open_disputes[-1]) if len(open_disputes) else service.n_records - 1
    elif isinstance(record, Recent):
        record = service.n_records - 1 - record
    exists = record is not None and 0 <= record < service.n_records
    out = {}
    for key, value in kwargs.items():
        if key == "record":
            value = record
        elif isinstance(value, Party):
            value = int(service.records[record, 0 if value == PROVIDER else 1]) if exists else STRANGER
        out[key] = value
    return out


#: pairs of one household in OPENING
same_household = st.sampled_from([(2, 4), (4, 6), (6, 2), (3, 5), (5, 3)])

#: the arguments of each command
ARGUMENTS = {
    "register": st.fixed_dictionaries({"member": st.integers(0, 7), "role": st.sampled_from([0, 0, 0, 1, -1, 2, 3]),
                                       "household": st.integers(-1, 2), "by": by}),
    "record": st.fixed_dictionaries({"provider": who, "receiver": who, "minutes": minutes,
                                     "kind": st.integers(0, 5), "by": by}),
    "confirm": st.fixed_dictionaries({"record": records, "by": settler}),
    "cancel": st.fixed_dictionaries({"record": records, "by": settler}),
    "dispute": st.fixed_dictionaries({"record": records, "by": settler}),
    "resolve": st.fixed_dictionaries({"record": disputed, "uphold": st.booleans(), "by": staff}),
    "set_floor": st.fixed_dictionaries({"member": target, "floor": floors, "by": by}),
    "endow": st.fixed_dictionaries({"member": target, "minutes": minutes, "by": by}),
    "family_transfer": st.one_of(
        st.fixed_dictionaries({"by": who, "to": who, "minutes": minutes}),
        st.tuples(same_household, minutes).map(lambda p: {"by": p[0][0], "to": p[0][1], "minutes": p[1]})),
}
#: how often each command is drawn: records and their settlement most
MIX = ["record"] * 5 + ["confirm"] * 4 + ["cancel", "dispute", "dispute", "resolve", "resolve", "register",
                                            "set_floor", "endow", "endow", "family_transfer"]
commands = st.sampled_from(MIX).flatmap(lambda name: st.tuples(st.just(name), ARGUMENTS[name]))

#: Commands that bring members in first (2 a coordinator; households 0 and 1), so that most of a
#: sequence has someone to act on.
OPENING = [("register", {"member": m, "role": int(m == 2), "household": m % 2, "by": None}) for m in range(2, 7)]


@pytest.fixture(scope="module")
def chain():
    return Chain()


def outcome(service, name, kwargs):
    """(reason, returned value) of one command."""
    try:
        return Reason.Accepted, getattr(service, name)(**kwargs)
    except ServiceError as exc:
        return exc.reason, None


def service_balances(service):
    n = service.ledger.n
    return np.array([service.ledger.balances[i] if 0 <= i < n else 0 for i in IDS], dtype=np.int64)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(floor=st.sampled_from([0, -30]), family=st.booleans(), opening=st.sampled_from([True, True, True, False]),
       sequence=st.lists(commands, min_size=15, max_size=40))
def test_service_and_contract_decide_alike(chain, floor, family, opening, sequence):
    policy = TimeBankPolicy(member_floor=floor, allow_family_transfer=family)
    service, contract = TimeBank(policy=policy), TimeBankContract(chain, policy=policy)
    for step, (name, kwargs) in enumerate((OPENING if opening else []) + sequence):
        kwargs = concrete(kwargs, service)
        expected, got = outcome(service, name, kwargs), outcome(contract, name, kwargs)
        event(f"{name}: {expected[0].name}")
        assert got == expected, f"step {step}: {name}({kwargs}): contract {got}, service {expected}"
        assert np.array_equal(contract.balances(IDS), service_balances(service)), \
            f"step {step}: {name}({kwargs}): balances differ"
    for record in range(service.n_records):
        assert contract.record_status(record) == service.record_status(record)
    assert contract.total() == 0
