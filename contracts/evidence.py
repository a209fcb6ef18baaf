"""Evidence on chain: a Merkle root per simulated day, vote tallies, and their verification.

This is what the twin's ``chain.mode = anchor`` uses at each day end.

**The day root** (:func:`merkle_root`).  Leaf *i* is ``keccak256(row_i.tobytes())`` for the
day's event rows in log order (little-endian fields, the array's own dtype: the log's
``EVENT_DTYPE`` packs a row into 61 bytes).  Leaves are hashed pairwise and *positionally*
(``keccak256(left || right)``, left first, not sorted); a level with an odd count carries its
last node up unchanged.  Inner nodes hash 64 bytes and rows of 64 bytes are refused, so a
leaf's preimage can never pass for an inner node's.  A day without events has the root :data:`EMPTY_ROOT` = ``keccak256(b"")``.

**Anchors.**  ``EvidenceRegistry.sol`` keeps write-once (kind, subject) slots: the ledger root
of day *d* is ``(LEDGER_ROOT, d)``, the tally of topic *t* is ``(VOTE_TALLY, t)`` with hash
``keccak256(tally_bytes)``.  :class:`Anchorer` writes them and keeps what it wrote
(:meth:`Anchorer.records`); :meth:`Anchorer.save` puts those records in ``anchors.json``.

**A saved run** (:func:`verify_run`) is a folder holding ``anchors.json`` (written by
:meth:`Anchorer.save`) and ``events.npy`` (the event log, ``EVENT_DTYPE``, ``t`` in minutes;
day = ``floor(t / 1440)``).  Its roots are recomputed from the log and checked against the
chain at the recorded URL and registry address.
"""
import json
from enum import IntEnum
from pathlib import Path

import numpy as np
from eth_utils import keccak

from contracts.chain import Chain
from twin.services.reasons import ServiceError

#: Root of a day with no events.
EMPTY_ROOT = keccak(b"")
MINUTES_PER_DAY = 1440
ANCHORS_FILE = "anchors.json"
EVENTS_FILE = "events.npy"


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

    def anchor(self, kind: AnchorKind, subject: int, digest: bytes) -> dict:
        """Anchor ``digest`` for (kind, subject) from ``chain.account``; ``AlreadyRegistered`` if taken."""
        kind = AnchorKind(kind)
        receipt = self.chain.transact(self.chain.account, self.contract, "anchor", [int(kind), int(subject), digest],
                                      f"anchor {kind.name} {subject}")
        (event,) = self.chain.events(self.contract, "Anchored", receipt)
        return {"index": int(event["index"]), "tx": receipt["transactionHash"].to_0x_hex(),
                "block": int(receipt["blockNumber"]), "time": int(event["time"]), "gas": int(receipt["gasUsed"])}

    def lookup(self, kind: AnchorKind, subject: int) -> dict:
        """The anchor of (kind, subject); raises ``UnknownRecord`` when there is none."""
        kind = AnchorKind(kind)
        return _anchor_dict(self.chain.call(self.contract, "lookup", [int(kind), int(subject)],
                                            f"lookup {kind.name} {subject}"))

    def verify(self, kind: AnchorKind, subject: int, digest: bytes, account: str) -> bool:
        """Whether ``account`` anchored exactly ``digest`` for (kind, subject)."""
        return bool(self.chain.call(self.contract, "verify", [int(AnchorKind(kind)), int(subject), digest, account]))

    def anchors(self) -> list[dict]:
        """Every anchor in the registry, in anchoring order."""
        return [_anchor_dict(self.chain.call(self.contract, "anchorAt", [i]))
                for i in range(self.chain.call(self.contract, "count"))]


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
        """Check ``records`` against the events and the chain; return the mismatches (empty: all good).

        Each day root must equal the root recomputed from ``events_by_day`` (a missing day counts
        as empty) and be on chain as anchored by this anchorer's account; each tally hash must be
        on chain likewise; every day that has events must have a record.
        """
        return _mismatches(records, events_by_day, self.registry, self.chain.account.address)

    def save(self, run_dir) -> Path:
        """Write ``anchors.json`` (where the registry is, who anchored, the records) into ``run_dir``."""
        path = Path(run_dir) / ANCHORS_FILE
        path.write_text(json.dumps({"url": self.url, "chain_id": self.chain.chain_id, "address": self.address,
                                    "account": self.chain.account.address, "records": self._records},
                                   indent=2) + "\n")
        return path


def _mismatches(records, by_day, registry: EvidenceRegistry | None, account: str) -> list[dict]:
    """Mismatches of ``records`` against the events and, when a registry is given, the chain."""
    found = []
    for record in records:
        kind = AnchorKind[record["kind"]]
        key = SUBJECT_KEY[kind]
        subject = record[key]
        digest = record["root"] if kind is AnchorKind.ledger_root else record["hash"]
        if kind is AnchorKind.ledger_root:
            recomputed = "0x" + merkle_root(by_day.get(subject, np.zeros(0))).hex()
            if recomputed != digest:
                found.append({key: subject, "problem": "the events do not hash to the recorded root",
                              "recorded": digest, "recomputed": recomputed})
                continue
        if registry is not None and not registry.verify(kind, subject, bytes.fromhex(digest[2:]), account):
            found.append({key: subject, "problem": f"not on chain as recorded (anchored by {account})",
                          "recorded": digest, "on_chain": _on_chain(registry, kind, subject)})
    anchored_days = {r["day"] for r in records if r["kind"] == AnchorKind.ledger_root.name}
    for day in sorted(set(by_day) - anchored_days):
        if len(by_day[day]):
            found.append({"day": day, "problem": "the day has events but no anchor record"})
    return found


def _on_chain(registry: EvidenceRegistry, kind: AnchorKind, subject: int) -> dict | None:
    try:
        return registry.lookup(kind, subject)
    except ServiceError:
        return None


def verify_run(run_dir, url: str | None = None) -> dict:
    """Verify a saved run's anchors: its ``events.npy`` against ``anchors.json`` and the chain.

    ``url`` overrides the node recorded in ``anchors.json``.  A run anchored on the embedded
    EVM (recorded url null) has no chain left to ask: then only the recorded roots are checked
    against the log, and ``chain_checked`` is False.  Returns ``{"ok", "chain_checked", "url",
    "address", "days", "mismatches"}``.
    """
    run_dir = Path(run_dir)
    manifest = json.loads((run_dir / ANCHORS_FILE).read_text())
    by_day = events_by_day(np.load(run_dir / EVENTS_FILE))
    url = url or manifest["url"]
    registry = None
    if url is not None:
        # reading needs no key: any throwaway key serves for a connection that only calls views
        chain = Chain(url, private_key=keccak(b"community-twin read-only verifier"))
        if chain.chain_id != manifest["chain_id"]:
            raise ValueError(f"{url} serves chain {chain.chain_id}, the run anchored on chain {manifest['chain_id']}")
        registry = EvidenceRegistry(chain, manifest["address"])
    mismatches = _mismatches(manifest["records"], by_day, registry, manifest["account"])
    return {"ok": not mismatches, "chain_checked": registry is not None, "url": url,
            "address": manifest["address"], "days": sorted(by_day), "mismatches": mismatches}
