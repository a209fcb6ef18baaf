"""Evidence on chain: a Merkle root per simulated day, vote tallies, and their verification.

This is what the twin's ``chain.mode = anchor`` uses at each day end.

**The day root** (:func:`merkle_root`).  Leaf *i* is ``keccak256(row_i.tobytes())`` for the
day's event rows in log order (little-endian fields, the array's own dtype: the log's
``EVENT_DTYPE`` packs a row into 61 bytes).  Leaves are hashed pairwise and *positionally*
(``keccak256(left || right)``, left first, not sorted); a level with an odd count carries its
last node up unchanged.  Inner nodes hash 64 bytes and rows of 64 bytes are refused, so a
leaf's preimage can never pass for an inner node's.  A day without events has the root :data:`EMPTY_ROOT` = ``keccak256(b"")``.

**Anchors.**  ``EvidenceRegistry.sol`` keeps write-once slots keyed by writer: account *A*'s
ledger root of day *d* is ``(A, LEDGER_ROOT, d)``, its tally of topic *t* is ``(A, VOTE_TALLY, t)``
with hash ``keccak256(tally_bytes)``; nobody else can take *A*'s slots.  :class:`Anchorer`
writes them (one registry per run, deployed by the anchoring account unless ``address=`` is
given) and keeps what it wrote (:meth:`Anchorer.records`); :meth:`Anchorer.save` puts those
records in ``anchors.json``.

**Checking a saved run** (:func:`verify_run`).  A run folder holds ``events.npy`` -- the
authoritative event log (``EVENT_DTYPE``, ``t`` in minutes; day = ``floor(t / 1440)``) -- and
``events.csv.gz``, a copy for other tools that must say exactly the same, row for row; any other
``events*`` file is reported as a copy nobody checked.  Nothing else in the folder is trusted:
the node's URL, the chain id, the registry address and the anchoring account come from the
operator, and the day roots come from the chain.  Every anchor that account wrote in that
registry is listed; the ledger roots must run over consecutive days from day 0 and each must equal
the root recomputed from the log (a day the log lacks hashes as empty), and no day of the log may
lie beyond them.  Tally hashes cannot be recomputed from the log: they are checked against
``anchors.json``, both ways.  The registry's code must be the EvidenceRegistry this package
builds, so a forged contract at that address cannot answer for it.

A run anchored on the in-process EVM has no chain left to ask: its log is checked against its
own ``anchors.json`` only, and the report says ``status: unchecked``.
"""
import json
from enum import IntEnum
from pathlib import Path

import numpy as np
from eth_utils import keccak
from web3 import Web3

from contracts.chain import Chain, load_artifact

#: Root of a day with no events.
EMPTY_ROOT = keccak(b"")
MINUTES_PER_DAY = 1440
ANCHORS_FILE = "anchors.json"
#: The authoritative copy of a run's event log, and the copies that must agree with it.
EVENTS_FILE = "events.npy"
EVENT_COPIES = ("events.csv.gz",)
#: Anchors read in one call when listing an account's anchors.
_PAGE = 200


class ChainError(RuntimeError):
    """The chain could not be asked: no node at the URL, another chain, no registry at the address."""


class ExpectationError(ValueError):
    """What the operator expects of the chain is incomplete or malformed (a usage error)."""


class AnchorKind(IntEnum):
    """What an anchored hash is evidence of (``EvidenceRegistry.Kind``)."""

    vote_tally = 0
    fund_spend = 1
    ledger_root = 2


#: The key naming an anchor's subject in a record, per kind.
SUBJECT_KEY = {AnchorKind.vote_tally: "topic", AnchorKind.fund_spend: "spend", AnchorKind.ledger_root: "day"}


def merkle_root(events: np.ndarray) -> bytes:
    """The positional keccak256 Merkle root of ``events`` (a structured array), 32 bytes."""
    size = events.dtype.itemsize
    if size == 64:
        raise ValueError("rows of 64 bytes would hash like inner nodes; add or drop a field")
    if len(events) == 0:
        return EMPTY_ROOT
    raw = events.astype(events.dtype.newbyteorder("<")).tobytes()
    level = [keccak(raw[i : i + size]) for i in range(0, len(raw), size)]
    while len(level) > 1:
        paired = [keccak(level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = paired + level[-1:] if len(level) % 2 else paired
    return level[0]


def events_by_day(events: np.ndarray) -> dict[int, np.ndarray]:
    """A log's rows grouped by day (``floor(t / 1440)``), each group in log order."""
    days = np.floor(events["t"] / MINUTES_PER_DAY).astype(np.int64)
    return {int(d): events[days == d] for d in np.unique(days)}


class EvidenceRegistry:
    """``EvidenceRegistry.sol`` on a :class:`~contracts.chain.Chain`, deployed fresh or attached."""

    def __init__(self, chain: Chain | None = None, address: str | None = None):
        self.chain = chain or Chain()
        self.contract = (self.chain.deploy("EvidenceRegistry") if address is None
                         else self.chain.attach("EvidenceRegistry", address))

    @property
    def address(self) -> str:
        return self.contract.address

    def is_genuine(self) -> bool:
        """Whether the code at the address is the EvidenceRegistry this package builds (byte for byte)."""
        code = bytes(self.chain.w3.eth.get_code(self.contract.address))
        return code == bytes.fromhex(load_artifact("EvidenceRegistry")["deployedBytecode"][2:])

    def anchor(self, kind: AnchorKind, subject: int, digest: bytes) -> dict:
        """Anchor ``digest`` for (kind, subject) from ``chain.account``; ``AlreadyRegistered`` if it did already."""
        kind = AnchorKind(kind)
        receipt = self.chain.transact(self.chain.account, self.contract, "anchor", [int(kind), int(subject), digest],
                                      f"anchor {kind.name} {subject}")
        (event,) = self.chain.events(self.contract, "Anchored", receipt)
        return {"index": int(event["index"]), "tx": receipt["transactionHash"].to_0x_hex(),
                "block": int(receipt["blockNumber"]), "time": int(event["time"]), "gas": int(receipt["gasUsed"])}

    def lookup(self, account: str, kind: AnchorKind, subject: int) -> dict:
        """``account``'s anchor of (kind, subject); raises ``UnknownRecord`` when there is none."""
        kind = AnchorKind(kind)
        return _anchor_dict(self.chain.call(self.contract, "lookup", [account, int(kind), int(subject)],
                                            f"lookup {kind.name} {subject} of {account}"))

    def verify(self, kind: AnchorKind, subject: int, digest: bytes, account: str) -> bool:
        """Whether ``account`` anchored exactly ``digest`` for (kind, subject)."""
        return bool(self.chain.call(self.contract, "verify", [int(AnchorKind(kind)), int(subject), digest, account]))

    def anchors(self) -> list[dict]:
        """Every anchor in the registry, of every account, in anchoring order."""
        return [_anchor_dict(self.chain.call(self.contract, "anchorAt", [i]))
                for i in range(self.chain.call(self.contract, "count"))]

    def anchors_by(self, account: str) -> list[dict]:
        """Every anchor ``account`` wrote here, in anchoring order (others' anchors are never read)."""
        n = self.chain.call(self.contract, "countBy", [account])
        return [_anchor_dict(a) for start in range(0, n, _PAGE)
                for a in self.chain.call(self.contract, "anchorsBy", [account, start, _PAGE])]


def _anchor_dict(anchor) -> dict:
    digest, account, time, kind, subject, block = anchor
    return {"kind": AnchorKind(kind).name, "subject": int(subject), "hash": "0x" + bytes(digest).hex(),
            "account": account, "time": int(time), "block": int(block)}


class Anchorer:
    """Anchors day roots and vote tallies for one run; what the engine calls at day end.

    ``Anchorer()`` deploys a registry on a fresh embedded EVM; ``Anchorer(url, private_key=...)``
    on a JSON-RPC node; ``address=`` attaches to a registry already deployed there.
    """

    def __init__(self, url: str | None = None, address: str | None = None, private_key=None,
                 chain: Chain | None = None):
        self.chain = chain or Chain(url, private_key)
        self.registry = EvidenceRegistry(self.chain, address)
        self._records: list[dict] = []

    @property
    def url(self) -> str | None:
        return self.chain.url

    @property
    def address(self) -> str:
        return self.registry.address

    def anchor_day(self, day: int, events: np.ndarray) -> dict:
        """Anchor the Merkle root of day ``day``'s events (its rows of the log, in log order)."""
        root = merkle_root(events)
        done = self.registry.anchor(AnchorKind.ledger_root, day, root)
        record = {"kind": AnchorKind.ledger_root.name, "day": int(day), "root": "0x" + root.hex(),
                  "tx": done["tx"], "block": done["block"]}
        self._records.append(record)
        return record

    def anchor_tally(self, topic: int, tally_bytes: bytes) -> dict:
        """Anchor ``keccak256(tally_bytes)`` as the tally of voting topic ``topic``."""
        return self._anchor_payload(AnchorKind.vote_tally, topic, tally_bytes)

    def anchor_spend(self, spend: int, spend_bytes: bytes) -> dict:
        """Anchor ``keccak256(spend_bytes)`` as the evidence of maintenance-fund spend ``spend``."""
        return self._anchor_payload(AnchorKind.fund_spend, spend, spend_bytes)

    def _anchor_payload(self, kind: AnchorKind, subject: int, payload: bytes) -> dict:
        digest = keccak(bytes(payload))
        done = self.registry.anchor(kind, subject, digest)
        record = {"kind": kind.name, SUBJECT_KEY[kind]: int(subject), "hash": "0x" + digest.hex(),
                  "tx": done["tx"], "block": done["block"]}
        self._records.append(record)
        return record

    def records(self) -> list[dict]:
        """What this anchorer anchored, in order (copies)."""
        return [dict(r) for r in self._records]

    def verify(self, records: list[dict], events_by_day: dict[int, np.ndarray]) -> list[dict]:
        """Check ``records`` and the events against every anchor of this anchorer's account on chain.

        Returns the mismatches (empty: all good); see :func:`check_evidence`.
        """
        return check_evidence(events_by_day, records, self.registry.anchors_by(self.chain.account.address))

    def save(self, run_dir) -> Path:
        """Write ``anchors.json`` (where the registry is, who anchored, the records) into ``run_dir``.

        The file helps a reader find the chain; :func:`verify_run` trusts none of it.
        """
        path = Path(run_dir) / ANCHORS_FILE
        path.write_text(json.dumps({"url": self.url, "chain_id": self.chain.chain_id, "address": self.address,
                                    "account": self.chain.account.address, "records": self._records},
                                   indent=2) + "\n")
        return path


def _digest(record: dict) -> str:
    return record["root"] if record["kind"] == AnchorKind.ledger_root.name else record["hash"]


def _subject(record: dict) -> int:
    return record[SUBJECT_KEY[AnchorKind[record["kind"]]]]


def check_evidence(by_day: dict[int, np.ndarray], records: list[dict] | None,
                   on_chain: list[dict] | None) -> list[dict]:
    """Mismatches between a log (``by_day``), a run's anchor ``records`` and the anchors ``on_chain``.

    ``on_chain`` (every anchor of the trusted account, from :meth:`EvidenceRegistry.anchors_by`)
    is the truth when given: its day roots must run 0, 1, ... without a gap and each equal the
    root recomputed from the log; no day of the log may lie beyond them; ``records`` (when given)
    must hold exactly what is on chain.  Without it (``None``: no chain to ask), the records'
    day roots play that part.  A day the log lacks hashes as empty.
    """
    found = []
    truth = on_chain if on_chain is not None else (records or [])
    source = "on chain" if on_chain is not None else "in anchors.json"
    roots = {}
    for anchor in truth:
        if anchor["kind"] == AnchorKind.ledger_root.name:
            day = anchor["subject"] if on_chain is not None else anchor["day"]
            roots[day] = anchor["hash"] if on_chain is not None else anchor["root"]
    days = sorted(roots)
    gaps = sorted(set(range(days[-1] + 1)) - set(days)) if days else []
    if gaps:
        found.append({"days": gaps, "problem": f"no day root {source} for these days: anchored days must run "
                                               f"0..{days[-1]} without a gap"})
    for day in days:
        recomputed = "0x" + merkle_root(by_day.get(day, np.zeros(0, EMPTY_DTYPE))).hex()
        if recomputed != roots[day]:
            found.append({"day": day, "problem": f"the events do not hash to the day root {source}",
                          "anchored": roots[day], "recomputed": recomputed})
    for day in sorted(d for d in by_day if d not in roots and len(by_day[d])):
        found.append({"day": day, "problem": f"the day has events but no day root {source}"})
    if on_chain is not None and records is not None:
        chain_set = {(a["kind"], a["subject"], a["hash"]) for a in on_chain}
        record_set = {(r["kind"], _subject(r), _digest(r)) for r in records}
        for kind, subject, digest in sorted(record_set - chain_set):
            key = SUBJECT_KEY[AnchorKind[kind]]
            found.append({key: subject, "problem": "in anchors.json but not on chain as recorded", "recorded": digest})
        for kind, subject, digest in sorted(chain_set - record_set):
            key = SUBJECT_KEY[AnchorKind[kind]]
            found.append({key: subject, "problem": "on chain but not in anchors.json", "on_chain": digest})
    return found


#: Row layout of a day with no events (its root is EMPTY_ROOT whatever the dtype).
EMPTY_DTYPE = np.dtype([("t", "f8")])


def check_log_copies(run_dir: Path, events: np.ndarray) -> tuple[list[str], list[dict]]:
    """The copies of the log beside ``events.npy`` that were checked, and their mismatches.

    ``events.csv.gz`` must hold the same rows (kinds by name); any other ``events*`` file is a
    copy this check does not know how to read, and is reported as such.
    """
    import pandas as pd

    from twin.services.events import FIELDS, EventKind

    checked, found = [], []
    for path in sorted(run_dir.glob("events*")):
        name = path.name
        if name == EVENTS_FILE:
            continue
        if name not in EVENT_COPIES:
            found.append({"file": name, "problem": f"a copy of the log that verify does not check; {EVENTS_FILE} "
                                                   "is the authoritative log"})
            continue
        checked.append(name)
        try:
            frame = pd.read_csv(path)
            kinds = np.array([int(EventKind[k]) for k in frame["kind"]], np.int64)
        except (KeyError, ValueError, OSError, EOFError) as exc:
            found.append({"file": name, "problem": f"unreadable as the event log: {type(exc).__name__}: {exc}"})
            continue
        if list(frame.columns) != list(FIELDS) or len(frame) != len(events):
            found.append({"file": name, "problem": f"{len(frame)} rows of columns {list(frame.columns)}, "
                                                   f"{EVENTS_FILE} has {len(events)} of {list(FIELDS)}"})
            continue
        differ = np.zeros(len(events), bool)
        for field in FIELDS:
            column = kinds if field == "kind" else frame[field].to_numpy()
            differ |= column != events[field]
        if differ.any():
            rows = np.flatnonzero(differ)
            found.append({"file": name, "problem": f"differs from {EVENTS_FILE} in {len(rows)} rows",
                          "first_row": int(rows[0])})
    return checked, found


def verify_run(run_dir, url: str | None = None, chain_id: int | None = None, registry: str | None = None,
               account: str | None = None) -> dict:
    """Verify a saved run (see the module docstring); the chain's whereabouts come from the caller.

    Give all of ``url``, ``chain_id``, ``registry`` and ``account`` to check the chain, or none of
    them to check only the log against the run's own ``anchors.json`` (``status: unchecked``).
    Returns ``{"status": "verified" | "mismatch" | "unchecked", "ok", "chain_checked", ...,
    "mismatches"}``; ``ok`` only when verified on chain.  Raises :class:`ChainError` when the
    chain cannot be asked, :class:`ExpectationError` when only some of the four are given or an
    address is malformed.
    """
    run_dir = Path(run_dir)
    expected = {"url": url, "chain_id": chain_id, "registry": registry, "account": account}
    given = [k for k, v in expected.items() if v is not None]
    if given and len(given) < 4:
        missing = ", ".join(k for k in expected if k not in given)
        raise ExpectationError(f"to check the chain, give url, chain_id, registry and account (missing: {missing})")
    events = np.load(run_dir / EVENTS_FILE)
    by_day = events_by_day(events)
    manifest_path = run_dir / ANCHORS_FILE
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    if manifest is None and not given:
        raise FileNotFoundError(f"{manifest_path} is absent and no chain was given: nothing to verify against")
    records = manifest["records"] if manifest is not None else None
    copies, mismatches = check_log_copies(run_dir, events)

    on_chain = None
    if given:
        registry_ = _open_registry(url, int(chain_id), registry)
        if not Web3.is_address(account):
            raise ExpectationError(f"{account!r} is not an address")
        account = Web3.to_checksum_address(account)
        try:
            on_chain = registry_.anchors_by(account)
        except Exception as exc:   # the node went away, or answered nonsense
            raise ChainError(f"could not list the anchors of {account} in {registry} at {url}: {exc}") from exc
        if not on_chain:
            mismatches.append({"problem": f"{account} anchored nothing in the registry {registry}"})
        if manifest is not None:
            for key, value in (("address", registry), ("account", account), ("chain_id", int(chain_id))):
                if str(manifest.get(key)).lower() != str(value).lower():
                    mismatches.append({"file": ANCHORS_FILE, "problem": f"names {key} {manifest.get(key)}, "
                                                                          f"the operator expects {value}"})
    mismatches += check_evidence(by_day, records, on_chain)
    status = "mismatch" if mismatches else "verified" if on_chain is not None else "unchecked"
    days = sorted(a["subject"] for a in on_chain if a["kind"] == AnchorKind.ledger_root.name) \
        if on_chain is not None else sorted(r["day"] for r in records if r["kind"] == AnchorKind.ledger_root.name)
    return {"status": status, "ok": status == "verified", "chain_checked": on_chain is not None,
            "url": url, "chain_id": chain_id, "registry": registry, "account": account,
            "anchors_on_chain": None if on_chain is None else len(on_chain),
            "days_anchored": len(days), "last_day": days[-1] if days else None,
            "log": EVENTS_FILE, "log_copies_checked": copies, "mismatches": mismatches}


def _open_registry(url: str, chain_id: int, address: str) -> EvidenceRegistry:
    """The registry at ``address`` on the node at ``url``, after checking the chain and the code."""
    if not Web3.is_address(address):
        raise ExpectationError(f"{address!r} is not an address")
    try:
        chain = Chain(url, read_only=True)
    except Exception as exc:
        raise ChainError(f"no node answers at {url}: {type(exc).__name__}: {exc}") from exc
    if chain.chain_id != chain_id:
        raise ChainError(f"{url} serves chain {chain.chain_id}, not the expected chain {chain_id}")
    try:
        registry = EvidenceRegistry(chain, address)
    except ValueError as exc:   # no contract there
        raise ChainError(str(exc)) from exc
    if not registry.is_genuine():
        raise ChainError(f"the contract at {address} on chain {chain_id} is not the EvidenceRegistry this "
                         "package builds")
    return registry
