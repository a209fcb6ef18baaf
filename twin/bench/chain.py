"""The chain benchmark: gas per time-bank and registry operation, and throughput of the embedded EVM.

``run()`` deploys both contracts on a fresh in-process EVM (py-evm), measures the gas each
operation uses (from receipts) and how many transactions a second the binding pushes through:
accepted operations, refused ones (each refusal is mined, then replayed as a call to recover
its reason), and read-only calls.  It also times :func:`contracts.evidence.merkle_root`.
About 20 s on a 2-core machine.
"""
import time

import numpy as np

from contracts.chain import Chain
from contracts.evidence import AnchorKind, EvidenceRegistry, merkle_root
from contracts.timebank import TimeBankContract
from twin.services import events as ev
from twin.services.reasons import ServiceError
from twin.services.timebank import Role, TimeBankPolicy

ADMIN, ENDOWMENT, COORD = 0, 1, 2


def _per_second(n: int, seconds: float) -> float:
    return round(n / seconds, 1)


def _gas_per_operation(chain: Chain) -> dict[str, int]:
    """Gas used by one accepted call of each operation (deployments included)."""
    gas = {}
    bank = TimeBankContract(chain, policy=TimeBankPolicy(member_floor=-60, allow_family_transfer=True))
    gas["deploy_timebank"] = chain.w3.eth.get_transaction_receipt(
        chain.w3.eth.get_block("latest")["transactions"][0])["gasUsed"]

    def measure(name, call, *args, **kwargs):
        result = call(*args, **kwargs)
        gas[name] = int(bank.last_receipt["gasUsed"])
        return result

    measure("register", bank.register, 10, household=3)
    bank.register(11, household=3)
    bank.register(COORD, Role.coordinator)
    measure("set_floor", bank.set_floor, 11, -120)
    measure("endow", bank.endow, 10, 100)
    record = measure("record", bank.record, 10, 11, 30)
    measure("confirm", bank.confirm, record, by=11)
    measure("cancel", bank.cancel, bank.record(10, 11, 30), by=10)
    disputed = bank.record(10, 11, 30)
    measure("dispute", bank.dispute, disputed, by=11)
    measure("resolve_upheld", bank.resolve, disputed, True, by=COORD)
    measure("record_by_staff", bank.record, 10, 11, 30, by=COORD)   # the recorder takes a storage slot
    measure("family_transfer", bank.family_transfer, 10, 11, 5)
    measure("revoke", bank.revoke, COORD)
    measure("rotate_admin", bank.rotate_admin, 20)

    registry = EvidenceRegistry(chain)
    gas["deploy_registry"] = chain.w3.eth.get_transaction_receipt(
        chain.w3.eth.get_block("latest")["transactions"][0])["gasUsed"]
    gas["anchor"] = registry.anchor(AnchorKind.ledger_root, 0, merkle_root(ev.empty(0)))["gas"]
    return gas


def _throughput(chain: Chain, n: int) -> dict[str, float]:
    bank = TimeBankContract(chain)
    for member in (10, 11):
        bank.register(member)
    bank.endow(11, 10 * n)

    start = time.perf_counter()
    for _ in range(n // 2):   # record + confirm: the time bank's everyday pair
        bank.confirm(bank.record(10, 11, 1), by=11)
    accepted = _per_second(2 * (n // 2), time.perf_counter() - start)

    start = time.perf_counter()
    for _ in range(n):
        try:
            bank.endow(10, 1, by=11)   # refused: only the admin endows
        except ServiceError:
            pass
    refused = _per_second(n, time.perf_counter() - start)

    members = list(range(12))
    start = time.perf_counter()
    for _ in range(n):
        bank.balances(members)
    calls = _per_second(n, time.perf_counter() - start)
    return {"accepted_tx_per_s": accepted, "refused_tx_per_s": refused, "balance_calls_per_s": calls}


def _merkle_rows_per_s(rows: int = 50_000) -> float:
    events = ev.make(ev.EventKind.ServiceRecorded, np.arange(rows, dtype=np.float64), actor=np.arange(rows))
    start = time.perf_counter()
    merkle_root(events)
    return _per_second(rows, time.perf_counter() - start)


def run(n: int = 400) -> dict:
    """Gas per operation and operations per second on the embedded EVM (``n`` transactions per figure)."""
    chain = Chain()
    result = {"evm": "embedded py-evm (web3 EthereumTesterProvider)", "transactions_per_figure": n}
    result["gas"] = _gas_per_operation(chain)
    result.update(_throughput(chain, n))
    result["merkle_rows_per_s"] = _merkle_rows_per_s()
    return result
