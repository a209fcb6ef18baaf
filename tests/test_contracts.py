"""The contracts: artifacts match sources, security rules, evidence anchoring, a real JSON-RPC node.

The embedded EVM (py-evm) serves most tests; the ``ganache`` fixture starts the ganache binary
from ``contracts/node_modules`` on a free loopback port for the URL path (member keys from
encrypted keystores there).  The rule-for-rule agreement with the time-bank service is in
``test_contracts_property.py``; ``twin verify`` against a node is in ``test_verify.py``.
"""
import json

import numpy as np
import pytest
from eth_utils import keccak

from contracts import build
from contracts.chain import (CALL_GAS, DEFAULT_KEY_SEED, DEPLOY_GAS, Chain, MemberKeyMissing, MemberUnfunded,
                             TransactionReverted, load_artifact, reason_of_revert)
from contracts.devnode import GanacheMissing, ganache_node
from contracts.evidence import EMPTY_ROOT, AnchorKind, Anchorer, EvidenceRegistry, events_by_day, merkle_root
from contracts.keys import KeystoreSigner, create_keystores
from contracts.timebank import TimeBankContract, mirror_timebank
from twin.services import events as ev
from twin.services import reasons
from twin.services.events import EventKind, EventLog
from twin.services.reasons import Reason
from twin.services.timebank import MAX_MEMBER_ID, RecordStatus, Role, TimeBank, TimeBankPolicy

ADMIN, ENDOWMENT, COORD, ANN, BOB, CAT, OUTSIDER = 0, 1, 2, 3, 4, 5, 9


@pytest.fixture(scope="module")
def chain():
    return Chain()


@pytest.fixture
def bank(chain):
    """A fresh time bank: a coordinator, three members (Ann and Bob one household), floor -60."""
    b = TimeBankContract(chain, policy=TimeBankPolicy(member_floor=-60, allow_family_transfer=True))
    b.register(COORD, Role.coordinator)
    b.register(ANN, household=7)
    b.register(BOB, household=7)
    b.register(CAT, by=COORD)
    return b


def refused(reason, call, *args, **kwargs):
    """The call raises the exception class named after ``reason`` (the service's own class)."""
    with pytest.raises(reasons.ServiceError) as info:
        call(*args, **kwargs)
    assert type(info.value) is getattr(reasons, reason.name)
    assert info.value.reason is reason


# ------------------------------------------------------------------ artifacts and build

def test_artifacts_record_how_they_were_built():
    for name in ("TimeBank", "EvidenceRegistry"):
        artifact = load_artifact(name)
        assert artifact["compiler"]["version"].startswith("0.8.37+")
        assert artifact["settings"]["evmVersion"] == "shanghai"
        assert artifact["settings"]["optimizer"] == {"enabled": True, "runs": 200}
        assert artifact["abi"] and len(bytes.fromhex(artifact["bytecode"][2:])) > 1000


def test_artifacts_are_built_from_the_committed_sources():
    """Works without a compiler: an edited .sol without a rebuild fails here."""
    for name in ("TimeBank", "EvidenceRegistry"):
        artifact = load_artifact(name)
        assert artifact["sourcesSha256"] == build.sources_sha256(), "run `python -m contracts.build`"


@pytest.mark.tool("solc", build.compiler_missing())
def test_recompiling_reproduces_the_committed_artifacts():
    assert build.stale_artifacts() == [], "committed artifacts differ from the sources: `python -m contracts.build`"


def test_the_compiler_and_ganache_are_pinned():
    package = json.loads((build.HERE / "package.json").read_text())
    lock = json.loads((build.HERE / "package-lock.json").read_text())
    assert package["dependencies"]["solc"] == "0.8.37"
    assert package["devDependencies"]["ganache"].startswith("7.")
    assert lock["packages"]["node_modules/solc"]["version"] == "0.8.37"


def test_custom_errors_are_reasons_and_decode_to_them():
    for name in ("TimeBank", "EvidenceRegistry"):
        errors = [e["name"] for e in load_artifact(name)["abi"] if e["type"] == "error"]
        assert errors and all(e in Reason.__members__ for e in errors), errors
        for e in errors:
            assert reason_of_revert(keccak(text=f"{e}()")[:4]) is Reason[e]
    assert reason_of_revert(keccak(text="Error(string)")[:4] + b"\0" * 32) is None


def test_nothing_but_the_operations_changes_the_books():
    """The ABI's state-changing functions are exactly the time bank's operations: no other way to mint."""
    abi = load_artifact("TimeBank")["abi"]
    writes = {f["name"] for f in abi if f["type"] == "function" and f["stateMutability"] not in ("view", "pure")}
    assert writes == {"register", "record", "confirm", "cancel", "dispute", "resolve", "setFloor", "endow",
                      "familyTransfer", "revoke", "rotateAdmin"}
    assert not any(f["stateMutability"] == "payable" for f in abi if "stateMutability" in f)


# ------------------------------------------------------------------ the time bank on chain

def test_a_service_exchange_on_chain(bank):
    record = bank.record(ANN, BOB, 45, "escort")
    assert record == 0 and bank.record_status(record) == RecordStatus.pending
    bank.confirm(record, by=BOB)
    assert bank.record_status(record) == RecordStatus.confirmed
    assert (bank.balance(ANN), bank.balance(BOB)) == (45, -45)
    assert bank.last_receipt["gasUsed"] < CALL_GAS
    (event,) = bank.chain.events(bank.contract, "ServiceConfirmed", bank.last_receipt)
    assert event["amount"] == 45 and event["by"] == bank.address_of(BOB)
    assert bank.total() == 0


def test_an_outsider_cannot_record_or_confirm(bank):
    refused(Reason.UnknownMember, bank.record, OUTSIDER, ANN, 30)   # not a member: cannot provide
    refused(Reason.Unauthorized, bank.record, ANN, BOB, 30, by=OUTSIDER)   # nor record for others
    record = bank.record(ANN, BOB, 30)
    refused(Reason.Unauthorized, bank.confirm, record, by=OUTSIDER)
    refused(Reason.Unauthorized, bank.confirm, record, by=ANN)   # the provider cannot confirm either
    refused(Reason.Unauthorized, bank.cancel, record, by=OUTSIDER)
    refused(Reason.Unauthorized, bank.dispute, record, by=COORD)   # only a party disputes
    assert bank.record_status(record) == RecordStatus.pending


def test_a_receiver_cannot_confirm_twice(bank):
    record = bank.record(ANN, BOB, 30)
    bank.confirm(record, by=BOB)
    refused(Reason.NotPending, bank.confirm, record, by=BOB)
    assert bank.balance(ANN) == 30


def test_no_one_pushes_a_member_below_the_floor(bank):
    to_floor, beyond = bank.record(ANN, BOB, 60), bank.record(ANN, BOB, 1)
    bank.confirm(to_floor, by=BOB)   # exactly down to the floor of -60
    refused(Reason.InsufficientBalance, bank.confirm, beyond, by=BOB)
    refused(Reason.ConfirmationRequired, bank.confirm, beyond, by=COORD)   # staff cannot confirm at all
    refused(Reason.ConfirmationRequired, bank.confirm, beyond, by=ADMIN)
    bank.dispute(beyond, by=BOB)
    refused(Reason.InsufficientBalance, bank.resolve, beyond, True, by=ADMIN)
    refused(Reason.InsufficientBalance, bank.family_transfer, BOB, ANN, 1)
    assert bank.balance(BOB) == -60
    bank.resolve(beyond, False, by=COORD)
    assert bank.record_status(beyond) == RecordStatus.cancelled


def test_only_the_admin_sets_floors_and_draws_on_the_endowment(bank):
    for who in (COORD, ANN, OUTSIDER, ENDOWMENT):
        refused(Reason.Unauthorized, bank.set_floor, ANN, -500, by=who)
        refused(Reason.Unauthorized, bank.endow, ANN, 100, by=who)
    refused(Reason.InvalidAmount, bank.set_floor, ANN, 1)
    refused(Reason.UnknownMember, bank.set_floor, ENDOWMENT, -5)
    refused(Reason.UnknownMember, bank.endow, ENDOWMENT, 5)
    refused(Reason.UnknownMember, bank.endow, ADMIN, 5)
    bank.set_floor(ANN, -500)
    bank.endow(CAT, 100)
    assert bank.balance(CAT) == 100 and bank.balance(ENDOWMENT) == -100
    assert bank.total() == 0


def test_registration_rules(bank):
    refused(Reason.InvalidRole, bank.register, 20, Role.admin)
    refused(Reason.Unauthorized, bank.register, 20, Role.coordinator, by=COORD)   # coordinators add members only
    refused(Reason.Unauthorized, bank.register, 20, by=ANN)
    refused(Reason.AlreadyRegistered, bank.register, ENDOWMENT)
    refused(Reason.UnknownMember, bank.balance, 20)
    refused(Reason.InvalidId, bank.register, -3)
    refused(Reason.InvalidId, bank.register, MAX_MEMBER_ID + 1)
    refused(Reason.UnknownKind, bank.register, 20, 99)
    refused(Reason.UnknownKind, bank.register, 20, "chair")


def test_inputs_are_refused_by_reason_before_anything_is_sent(chain, bank):
    sent = chain.transactions
    refused(Reason.NotAnInteger, bank.record, ANN, BOB, 10.9)
    refused(Reason.NotAnInteger, bank.endow, ANN, float("nan"))
    refused(Reason.NotAnInteger, bank.confirm, 0.5, by=BOB)
    refused(Reason.InvalidId, bank.record, ANN, -1, 10)
    refused(Reason.InvalidId, bank.family_transfer, 10**12, ANN, 1)
    assert chain.transactions == sent
    refused(Reason.UnknownKind, bank.record, ANN, BOB, 10, 99)   # this one the contract refuses


def test_the_contract_itself_refuses_unknown_kinds(chain, bank):
    """Not only the binding: a raw transaction with kind 6 or role 99 is refused on chain."""
    with pytest.raises(reasons.UnknownKind):
        chain.transact(chain.member(ANN), bank.contract, "record",
                       [bank.address_of(ANN), bank.address_of(BOB), 10, 6, 0], "raw record")
    with pytest.raises(reasons.UnknownKind):
        chain.transact(chain.account, bank.contract, "register", [chain.member(20).address, 99, -1], "raw register")


@pytest.mark.parametrize("staff_confirm", [False, True])
def test_a_coordinator_alone_cannot_move_a_members_minutes_on_chain(chain, staff_confirm):
    bank = TimeBankContract(chain, policy=TimeBankPolicy(staff_confirm=staff_confirm))
    bank.register(COORD, Role.coordinator)
    bank.register(ANN)
    bank.register(BOB)
    bank.endow(BOB, 100)
    record = bank.record(ANN, BOB, 60, by=COORD)
    refused(Reason.ConfirmationRequired, bank.confirm, record, by=COORD)
    own = bank.record(COORD, BOB, 60)
    bank.dispute(own, by=COORD)
    refused(Reason.Unauthorized, bank.resolve, own, True, by=COORD)   # a party does not resolve
    if staff_confirm:
        bank.confirm(record, by=ADMIN)   # a second staff member
        assert bank.balance(BOB) == 40
    else:
        refused(Reason.ConfirmationRequired, bank.confirm, record, by=ADMIN)
        assert bank.balance(BOB) == 100


def test_the_endowment_budget_on_chain(chain):
    bank = TimeBankContract(chain, policy=TimeBankPolicy(endowment_budget=100))
    bank.register(ANN)
    assert bank.policy.endowment_budget == 100
    bank.endow(ANN, 60)
    refused(Reason.EndowmentExhausted, bank.endow, ANN, 41)
    bank.endow(ANN, 40)
    assert bank.balance(ENDOWMENT) == -100 and bank.total() == 0
    assert chain.call(bank.contract, "floorOf", [bank.address_of(ENDOWMENT)]) == -100


def test_revocation_and_admin_rotation_on_chain(chain, bank):
    bank.revoke(COORD)
    refused(Reason.Unauthorized, bank.register, 20, by=COORD)
    refused(Reason.InvalidRole, bank.revoke, COORD)
    refused(Reason.Unauthorized, bank.revoke, ANN, by=COORD)
    bank.rotate_admin(30)
    (event,) = chain.events(bank.contract, "AdminRotated", bank.last_receipt)
    assert event["newAdmin"] == bank.address_of(30) == chain.call(bank.contract, "admin")
    refused(Reason.Unauthorized, bank.endow, ANN, 5, by=ADMIN)
    refused(Reason.AlreadyRegistered, bank.register, ADMIN, by=30)   # the retired admin never comes back
    bank.endow(ANN, 5)   # by the new admin, with its own key
    bank.register(COORD + 20, Role.coordinator)
    assert bank.balance(ANN) == 5 and bank.total() == 0


def test_family_transfers_follow_the_policy(chain, bank):
    bank.family_transfer(ANN, BOB, 20)
    refused(Reason.PolicyForbids, bank.family_transfer, ANN, CAT, 20)   # another household
    refused(Reason.InvalidAmount, bank.family_transfer, ANN, BOB, 0)
    strict = TimeBankContract(chain)
    strict.register(ANN, household=7)
    strict.register(BOB, household=7)
    refused(Reason.PolicyForbids, strict.family_transfer, ANN, BOB, 1)


def test_a_failure_that_is_no_refusal_says_so(chain, bank):
    with pytest.raises(TransactionReverted, match="gas used"):   # out of gas: no reason to decode
        chain.transact(chain.account, bank.contract, "register", [chain.member(20).address, 0, -1],
                       "register 20", gas=30_000)
    bank.register(20)   # the nonce bookkeeping survived the failure


def test_attach_to_a_deployed_time_bank(chain, bank):
    bank.endow(ANN, 30)
    again = TimeBankContract(chain, address=bank.address)
    assert again.balance(ANN) == 30 and again.policy.member_floor == -60
    with pytest.raises(ValueError, match="endowment"):
        TimeBankContract(chain, address=bank.address, endowment=6)


def test_mirror_of_a_service_log_ends_with_the_service_balances(chain):
    log = EventLog()
    service = TimeBank(log, TimeBankPolicy(member_floor=-30, allow_family_transfer=True))
    rng = np.random.default_rng(5)
    ids = range(2, 9)
    for m in ids:
        service.register_batch(0, m, int(m == 2), m % 3)
    service.endow_batch(0, [3, 4], [50, 20])
    service.set_floor_batch(0, 5, -90)
    for _ in range(60):
        p, r = rng.choice(list(ids), 2, replace=False)
        out = service.record_batch(p, p, r, int(rng.integers(1, 40)))
        if out.accepted[0]:
            action = rng.integers(4)
            rec = out.ids[0]
            if action == 0:
                service.confirm_batch(r, rec)
            elif action == 1:
                service.dispute_batch(p, rec)
                service.resolve_batch(2, rec, int(rng.integers(2)))
            elif action == 2:
                service.cancel_batch(r, rec)
    service.family_transfer_batch(3, 6, 10)
    service.revoke_batch(0, 2)
    service.rotate_admin_batch(0, 20)
    service.endow_batch(20, 5, 7)
    assert len(log) > 100
    on_chain = mirror_timebank(log.events, chain, service.policy)
    assert on_chain == {m: int(service.ledger.balances[m]) for m in [0, 1, *ids, 20]}
    assert sum(on_chain.values()) == 0


# ------------------------------------------------------------------ evidence

def naive_root(events) -> bytes:
    """The documented Merkle rule spelled out: pair neighbours level by level, an odd last node carried up."""
    nodes = [keccak(bytes(row.tobytes())) for row in events]
    if not nodes:
        return keccak(b"")
    while len(nodes) > 1:
        nxt = []
        for i in range(0, len(nodes), 2):
            nxt.append(keccak(nodes[i] + nodes[i + 1]) if i + 1 < len(nodes) else nodes[i])
        nodes = nxt
    return nodes[0]


def day_events(n, day=0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(day * 1440, (day + 1) * 1440, n))
    return ev.make(EventKind.ServiceRecorded, t, actor=rng.integers(0, 99, n), amount=rng.integers(1, 60, n))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 33])
def test_merkle_root_is_the_documented_positional_tree(n):
    events = day_events(n, seed=n)
    assert merkle_root(events) == naive_root(events)
    assert len(merkle_root(events)) == 32


def test_merkle_root_commits_to_every_byte_and_the_order():
    events = day_events(6)
    assert merkle_root(events[:0]) == EMPTY_ROOT == keccak(b"")
    assert ev.EVENT_DTYPE.itemsize == 61   # never 64: no leaf can pass for an inner node
    with pytest.raises(ValueError, match="64 bytes"):
        merkle_root(np.zeros(2, dtype=[(f"f{i}", "u8") for i in range(8)]))
    flipped = events.copy()
    flipped["extra"][4] = 1
    assert merkle_root(flipped) != merkle_root(events)
    assert merkle_root(events[::-1]) != merkle_root(events)
    # leaf 2 with its sibling hash and uncle path reproduces the root (positional proof)
    leaves = [keccak(r.tobytes()) for r in events]
    left = keccak(keccak(leaves[0] + leaves[1]) + keccak(leaves[2] + leaves[3]))
    assert keccak(left + keccak(leaves[4] + leaves[5])) == merkle_root(events)


def test_evidence_cannot_be_overwritten_or_squatted(chain):
    registry = EvidenceRegistry(chain)
    operator, squatter = chain.account.address, chain.member(ANN)
    # someone writes the slot the operator is about to use: it is the squatter's own slot
    chain.transact(squatter, registry.contract, "anchor", [int(AnchorKind.vote_tally), 12, keccak(b"forged")],
                   "squat")
    first = registry.anchor(AnchorKind.vote_tally, 12, keccak(b"yes 40 no 12"))   # the run is not stopped
    refused(Reason.AlreadyRegistered, registry.anchor, AnchorKind.vote_tally, 12, keccak(b"yes 12 no 40"))
    with pytest.raises(reasons.AlreadyRegistered):   # nor can the squatter rewrite its own
        chain.transact(squatter, registry.contract, "anchor", [int(AnchorKind.vote_tally), 12, keccak(b"x")], "again")
    found = registry.lookup(operator, AnchorKind.vote_tally, 12)
    assert found["hash"] == "0x" + keccak(b"yes 40 no 12").hex() and found["account"] == operator
    assert found["block"] == first["block"]
    assert registry.lookup(squatter.address, AnchorKind.vote_tally, 12)["hash"] == "0x" + keccak(b"forged").hex()
    assert registry.verify(AnchorKind.vote_tally, 12, keccak(b"yes 40 no 12"), operator)
    assert not registry.verify(AnchorKind.vote_tally, 12, keccak(b"forged"), operator)
    refused(Reason.UnknownRecord, registry.lookup, operator, AnchorKind.fund_spend, 12)
    assert [a["account"] for a in registry.anchors()] == [squatter.address, operator]
    assert [a["hash"] for a in registry.anchors_by(operator)] == [found["hash"]]
    assert registry.is_genuine()


def test_anchorer_anchors_days_and_tallies_and_verifies_them(chain):
    anchorer = Anchorer(chain=chain)
    log = np.concatenate([day_events(5, 0), day_events(3, 2, seed=1)])
    by_day = events_by_day(log)
    assert sorted(by_day) == [0, 2]
    for day in range(3):   # day 1 is empty, and its root is the empty constant
        record = anchorer.anchor_day(day, by_day.get(day, log[:0]))
        assert set(record) == {"kind", "day", "root", "tx", "block"}
    assert anchorer.records()[1]["root"] == "0x" + EMPTY_ROOT.hex()
    anchorer.anchor_tally(4, b"\x01\x02")
    assert anchorer.verify(anchorer.records(), by_day) == []

    tampered = dict(by_day)
    tampered[2] = by_day[2].copy()
    tampered[2]["amount"][0] += 1
    (problem,) = anchorer.verify(anchorer.records(), tampered)
    assert problem["day"] == 2 and "do not hash" in problem["problem"]
    tampered[3] = day_events(1, 3)
    assert {p["day"] for p in anchorer.verify(anchorer.records(), tampered)} == {2, 3}
    deleted = {d: rows for d, rows in by_day.items() if d != 2}   # a day cut out of the log
    (problem,) = anchorer.verify(anchorer.records(), deleted)
    assert problem["day"] == 2 and problem["recomputed"] == "0x" + EMPTY_ROOT.hex()
    forged = anchorer.records()
    forged[3]["hash"] = "0x" + keccak(b"other").hex()
    problems = anchorer.verify(forged, by_day)
    assert {p["topic"] for p in problems} == {4} and len(problems) == 2   # not on chain; on chain, not recorded


# ------------------------------------------------------------------ a real JSON-RPC node

GANACHE_KEY = "0x" + keccak(b"community-twin ganache test key").hex()
KEYSTORE_PASSWORD = "correct horse battery staple"
FAST_KDF = {"kdf": "pbkdf2", "iterations": 2**10}   # tests only: the default kdf takes ~1 s a key


@pytest.fixture(scope="module")
def ganache(require_tool):
    """A ganache node on a free loopback port for this module; stopped afterwards."""
    try:
        with ganache_node([(GANACHE_KEY, 10**24)]) as url:
            yield url
    except GanacheMissing as exc:
        require_tool("ganache", str(exc))


@pytest.fixture(scope="module")
def keystores(tmp_path_factory):
    """Encrypted keystores for the endowment and the members the node tests use."""
    folder = tmp_path_factory.mktemp("keystores")
    create_keystores(folder, [ENDOWMENT, COORD, ANN, BOB, CAT], KEYSTORE_PASSWORD, **FAST_KDF)
    return folder


def test_a_url_needs_a_key(ganache, monkeypatch):
    monkeypatch.delenv("TWIN_CHAIN_KEY", raising=False)
    with pytest.raises(ValueError, match="private key"):
        Chain(ganache)


@pytest.mark.parametrize("seed", [DEFAULT_KEY_SEED, b"any other seed"])
def test_a_url_refuses_derived_member_keys(ganache, seed):
    with pytest.raises(ValueError, match="in-process EVM only"):
        Chain(ganache, private_key=GANACHE_KEY, key_seed=seed)


def test_on_a_url_members_need_a_signer(ganache):
    chain = Chain(ganache, private_key=GANACHE_KEY)
    with pytest.raises(MemberKeyMissing, match="member 3"):
        chain.member(ANN)
    with pytest.raises(MemberKeyMissing):
        TimeBankContract(chain)   # the endowment's address is a member key's


def test_keystores_are_encrypted_and_checked(keystores):
    signer = KeystoreSigner(keystores, password="wrong")
    account = signer(ANN)
    assert account.address.startswith("0x") and "crypto" in json.loads((keystores / f"{ANN}.json").read_text())
    with pytest.raises(ValueError):   # the wrong password never yields a key
        account.sign_transaction({"to": account.address, "value": 0, "gas": 21_000, "gasPrice": 1, "nonce": 0,
                                  "chainId": 1})
    with pytest.raises(MemberKeyMissing, match="no keystore"):
        signer(OUTSIDER)
    with pytest.raises(FileExistsError):
        create_keystores(keystores, [ANN], KEYSTORE_PASSWORD, **FAST_KDF)


def test_the_time_bank_on_a_json_rpc_node(ganache, keystores):
    chain = Chain(ganache, private_key=GANACHE_KEY, signer=KeystoreSigner(keystores, KEYSTORE_PASSWORD))
    assert chain.chain_id == 1337 and not chain.fund_members
    bank = TimeBankContract(chain, policy=TimeBankPolicy(member_floor=-20))
    bank.register(ANN)
    bank.register(BOB)
    bank.register(CAT)
    # members pay their own gas: the operator funds nobody unless asked
    with pytest.raises(MemberUnfunded, match=bank.address_of(ANN)):
        bank.record(ANN, BOB, 30)
    for member in (ANN, BOB):
        chain.fund(bank.address_of(member), 10**17)
    record = bank.record(ANN, BOB, 30)
    refused(Reason.InsufficientBalance, bank.confirm, record, by=BOB)   # mined with status 0, reason recovered
    refused(Reason.UnknownMember, bank.balance, COORD)                 # a view's revert (a key, no membership)
    bank.endow(BOB, 15)
    bank.confirm(record, by=BOB)
    assert list(bank.balances([ADMIN, ENDOWMENT, ANN, BOB])) == [0, -15, 30, -15]
    assert bank.total() == 0
    assert chain.w3.eth.get_balance(bank.address_of(CAT)) == 0   # never funded, never signed
    again = TimeBankContract(Chain(ganache, private_key=GANACHE_KEY, signer=KeystoreSigner(keystores,
                                                                                           KEYSTORE_PASSWORD)),
                             address=bank.address)
    assert again.balance(ANN) == 30


def test_the_operator_funds_members_only_when_asked(ganache, keystores):
    chain = Chain(ganache, private_key=GANACHE_KEY, signer=KeystoreSigner(keystores, KEYSTORE_PASSWORD),
                  fund_members=True)
    bank = TimeBankContract(chain)
    bank.register(COORD, Role.coordinator)
    bank.register(CAT, by=COORD)
    assert chain.w3.eth.get_balance(bank.address_of(COORD)) > 0


def test_deployment_gas_is_within_the_limit(chain):
    bank = TimeBankContract(chain)
    receipt = chain.w3.eth.get_transaction_receipt(
        chain.w3.eth.get_block(chain.w3.eth.block_number, full_transactions=True)["transactions"][0]["hash"])
    assert receipt["contractAddress"] == bank.address and receipt["gasUsed"] < DEPLOY_GAS


def test_amounts_and_floors_are_bounded_alike_on_chain_and_in_the_service(bank):
    """No balance can leave int64: the same bounds refuse on the contract and in the service."""
    from twin.services.timebank import MAX_MINUTES, MIN_FLOOR, TimeBank

    service = TimeBank()
    service.register(ANN)
    service.register(BOB)
    for target in (bank, service):
        refused(Reason.InvalidAmount, target.record, ANN, BOB, MAX_MINUTES + 1)
        refused(Reason.InvalidAmount, target.set_floor, ANN, MIN_FLOOR - 1)
        refused(Reason.InvalidAmount, target.endow, ANN, MAX_MINUTES + 1)
        target.set_floor(BOB, MIN_FLOOR)  # the bounds themselves are allowed
        record = target.record(ANN, BOB, MAX_MINUTES)
        target.confirm(record, by=BOB)
        assert target.balance(BOB) == -MAX_MINUTES and target.balance(ANN) == MAX_MINUTES
