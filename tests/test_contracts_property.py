"""Same rules, proved: the time-bank service and the contract decide every command alike.

One random sequence of commands (registrations with valid, invalid and unknown roles, records of
known and unknown kinds, confirmations by receivers, staff and second staff members,
cancellations, disputes and their resolution, floors, endowments up to and beyond the budget,
family transfers, revocations and admin rotations, overdraw attempts, commands by strangers, by
the wrong member and by ids out of bounds, minutes with fractions and NaN) goes to
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
from twin.services.timebank import MAX_MEMBER_ID, RecordStatus, TimeBank, TimeBankPolicy

#: 0 admin, 1 endowment, 2-6 would-be members (2 a coordinator), 7 a stranger, 8 a possible next
#: admin, -1 an id out of bounds.
IDS = list(range(-1, 9))
OUT_OF_BOUNDS = [MAX_MEMBER_ID + 1, -2**40]

#: mostly members, so that commands get past the first checks; sometimes anyone at all
who = st.sampled_from([2, 3, 4, 5, 6] * 4 + IDS + OUT_OF_BOUNDS)
#: whom the admin's commands target: members, and often the admin and the endowment themselves
target = st.sampled_from([2, 3, 4, 5, 6] * 2 + [0, 1] * 2 + IDS)
#: the default actor (admin or provider) mostly; anyone else sometimes
by = st.one_of(st.none(), st.none(), who)
#: multiples of ten, like the floors, so that balances often land exactly on a floor; now and
#: then no integer at all
minutes = st.sampled_from([10, 20, 30, 60] * 5 + [0, -5, 7, 10.5, float("nan"), 30.0])
floors = st.sampled_from([0, -10, -20, -30, -60, -120, 5, -10.5])


class Recent(int):
    """A record id counted back from the newest record (0: the newest), fixed when the command runs."""


class Party(str):
    """The provider or the receiver of the command's record, fixed when the command runs."""


class LastDisputed(int):
    """The newest disputed record (the newest record when none is), fixed when the command runs."""


PROVIDER, RECEIVER, RECORDER = Party("provider"), Party("receiver"), Party("recorder")
STRANGER = 7

#: mostly recent records, sometimes ids that do not exist
records = st.sampled_from([Recent(0)] * 4 + [Recent(1)] * 2 + [Recent(2), -1, 40])
#: who settles a record: its parties most often, staff (admin 0, coordinator 2, a rotated admin 8),
#: its recorder, and anyone else too
settler = st.sampled_from([RECEIVER] * 3 + [PROVIDER] * 2 + [0, 2] * 2 + [8, RECORDER] + IDS)
#: resolutions: mostly of a disputed record, mostly by staff
disputed = st.sampled_from([LastDisputed()] * 6 + [Recent(0), -1, 40])
staff = st.sampled_from([0, 2] * 4 + [8, RECEIVER, PROVIDER, RECORDER] + IDS)


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
            column = {PROVIDER: 0, RECEIVER: 1, RECORDER: 5}[value]
            value = int(service.records[record, column]) if exists else STRANGER
        out[key] = value
    return out


#: pairs of one household in OPENING
same_household = st.sampled_from([(2, 4), (4, 6), (6, 2), (3, 5), (5, 3)])

#: the arguments of each command
ARGUMENTS = {
    "register": st.fixed_dictionaries({"member": st.sampled_from(list(range(0, 9)) + OUT_OF_BOUNDS),
                                       "role": st.sampled_from([0, 0, 0, 1, -1, 2, 3, 4, 99, -2]),
                                       "household": st.integers(-1, 2), "by": by}),
    "record": st.fixed_dictionaries({"provider": who, "receiver": who, "minutes": minutes,
                                     "kind": st.sampled_from(list(range(6)) * 3 + [6, -1, 99]),
                                     "by": st.one_of(by, st.sampled_from([0, 2]))}),
    "confirm": st.fixed_dictionaries({"record": records, "by": settler}),
    "cancel": st.fixed_dictionaries({"record": records, "by": settler}),
    "dispute": st.fixed_dictionaries({"record": records, "by": settler}),
    "resolve": st.fixed_dictionaries({"record": disputed, "uphold": st.booleans(), "by": staff}),
    "set_floor": st.fixed_dictionaries({"member": target, "floor": floors, "by": by}),
    "endow": st.fixed_dictionaries({"member": target, "minutes": minutes, "by": by}),
    "family_transfer": st.one_of(
        st.fixed_dictionaries({"by": who, "to": who, "minutes": minutes}),
        st.tuples(same_household, minutes).map(lambda p: {"by": p[0][0], "to": p[0][1], "minutes": p[1]})),
    "revoke": st.fixed_dictionaries({"member": target, "by": by}),
    "rotate_admin": st.fixed_dictionaries({"new_admin": st.sampled_from([8, 8, 3, 1, -1]), "by": by}),
}
#: how often each command is drawn: records and their settlement most
MIX = ["record"] * 5 + ["confirm"] * 4 + ["cancel", "dispute", "dispute", "resolve", "resolve", "register",
                                            "set_floor", "endow", "endow", "family_transfer", "revoke",
                                            "rotate_admin"]
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
@given(floor=st.sampled_from([0, -30]), family=st.booleans(), staff_confirm=st.booleans(),
       budget=st.sampled_from([100, 100_000]), opening=st.sampled_from([True, True, True, False]),
       sequence=st.lists(commands, min_size=15, max_size=40))
def test_service_and_contract_decide_alike(chain, floor, family, staff_confirm, budget, opening, sequence):
    policy = TimeBankPolicy(member_floor=floor, allow_family_transfer=family, endowment_budget=budget,
                            staff_confirm=staff_confirm)
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
    assert contract.admin == service.admin
    assert contract.total() == 0


#: The new rules, command by command, under both confirmation policies: staff confirming and
#: upholding in the receiver's place, disputes by each party, the endowment budget running out,
#: revocation and admin rotation, inputs refused before the chain sees them.
GOVERNANCE = [
    ("endow", {"member": 4, "minutes": 60, "by": None}),
    ("endow", {"member": 3, "minutes": 50, "by": None}),         # over the budget of 100
    ("endow", {"member": 3, "minutes": 40, "by": None}),         # exactly up to it
    ("record", {"provider": 3, "receiver": 4, "minutes": 20, "kind": 0, "by": 2}),   # staff records for 3
    ("confirm", {"record": Recent(0), "by": 2}),                 # the recorder: never
    ("confirm", {"record": Recent(0), "by": 3}),                 # the provider: never
    ("confirm", {"record": Recent(0), "by": 0}),                 # a second staff member: if the policy says so
    ("record", {"provider": 3, "receiver": 4, "minutes": 10, "kind": 1, "by": None}),
    ("confirm", {"record": Recent(0), "by": 0}),                 # no staff recorded it: never
    ("dispute", {"record": Recent(0), "by": 3}),                 # the provider raises it
    ("resolve", {"record": LastDisputed(), "uphold": True, "by": 2}),
    ("resolve", {"record": LastDisputed(), "uphold": True, "by": 0}),
    ("record", {"provider": 2, "receiver": 4, "minutes": 10, "kind": 2, "by": None}),
    ("dispute", {"record": Recent(0), "by": 4}),                 # the receiver raises it
    ("resolve", {"record": LastDisputed(), "uphold": True, "by": 2}),   # a party: never
    ("resolve", {"record": LastDisputed(), "uphold": True, "by": 0}),
    ("record", {"provider": 3, "receiver": 4, "minutes": 10.5, "kind": 0, "by": None}),
    ("record", {"provider": 3, "receiver": 4, "minutes": 10, "kind": 99, "by": None}),
    ("record", {"provider": 3, "receiver": MAX_MEMBER_ID + 1, "minutes": 10, "kind": 0, "by": None}),
    ("revoke", {"member": 3, "by": None}),                       # not a coordinator
    ("record", {"provider": 3, "receiver": 4, "minutes": 5, "kind": 0, "by": 2}),
    ("revoke", {"member": 2, "by": None}),
    ("confirm", {"record": Recent(0), "by": 0}),                 # its recorder is no longer staff
    ("register", {"member": 5, "role": 0, "household": -1, "by": 2}),
    ("rotate_admin", {"new_admin": 3, "by": None}),              # a member: never
    ("rotate_admin", {"new_admin": 8, "by": None}),
    ("endow", {"member": 4, "minutes": 1, "by": 0}),             # the retired admin
    ("set_floor", {"member": 4, "floor": -10, "by": None}),      # the new admin
    ("register", {"member": 0, "role": 0, "household": -1, "by": None}),
]


@pytest.mark.parametrize("staff_confirm", [False, True])
def test_governance_and_the_budget_decide_alike(chain, staff_confirm):
    policy = TimeBankPolicy(endowment_budget=100, staff_confirm=staff_confirm)
    service, contract = TimeBank(policy=policy), TimeBankContract(chain, policy=policy)
    seen = set()
    for step, (name, kwargs) in enumerate(OPENING + GOVERNANCE):
        kwargs = concrete(kwargs, service)
        expected, got = outcome(service, name, kwargs), outcome(contract, name, kwargs)
        assert got == expected, f"step {step}: {name}({kwargs}): contract {got}, service {expected}"
        assert np.array_equal(contract.balances(IDS), service_balances(service)), f"step {step}: balances differ"
        seen.add(expected[0])
    assert {Reason.ConfirmationRequired, Reason.EndowmentExhausted, Reason.NotAnInteger, Reason.UnknownKind,
            Reason.InvalidId, Reason.InvalidRole, Reason.AlreadyRegistered, Reason.Unauthorized} <= seen
    assert contract.admin == service.admin == 8 and contract.total() == 0
