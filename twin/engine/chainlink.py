"""The twin's link to a chain: anchoring each day, mirroring the time bank.

``anchor`` posts, at each simulated day's end, the Merkle root of that day's
events (events whose time falls in the day, in log order) and the hash of
each vote tally resolved that day, from the operator's account (on a URL, the
key in ``TWIN_CHAIN_KEY``) into a registry deployed for the run.  Since the
in-process EVM ends with the process, a run verifies its anchors before it
returns; the records go to the run folder's ``anchors.json``, and ``twin
verify`` re-checks runs anchored on a persistent node against the chain, with
the registry, chain id and account the operator names.

``mirror`` replays the run's time-bank operations onto the TimeBank contract
and requires the same final balances.  It runs on the in-process EVM only:
its simulated members sign with derived keys, which a chain given by URL
refuses (``chain.url`` with ``chain.mode=mirror`` is a configuration error).
Where it ran is recorded in ``mirror.json``.
"""
import os

import numpy as np


class ChainLink:
    def __init__(self, cfg):
        self.mode, self.url = cfg.mode, cfg.url
        if self.mode == "mirror" and self.url is not None:
            raise ValueError("chain.mode=mirror runs on the in-process EVM only (its simulated members sign with "
                             "derived keys, which a chain given by URL refuses): leave chain.url unset")
        self.anchorer = None
        if self.mode == "anchor":
            from contracts.chain import PRIVATE_KEY_ENV
            from contracts.evidence import Anchorer

            self.anchorer = Anchorer(url=self.url, private_key=os.environ.get(PRIVATE_KEY_ENV) if self.url else None)

    def day_end(self, twin, d: int) -> None:
        if self.anchorer is None:
            return
        events = twin.log.events
        self.anchorer.anchor_day(d, events[np.floor(events["t"] / 1440.0) == d])
        for topic in twin.topics.resolved_today:
            tally = twin.services.voting.result(topic)
            payload = np.asarray(tally.counts, np.int64).tobytes() + np.int64(tally.winner).tobytes()
            self.anchorer.anchor_tally(topic, payload)

    def finish(self, twin) -> dict:
        """Verify (anchor) or compare (mirror) before the embedded chain goes away; return run-folder files."""
        if self.mode == "anchor":
            from contracts.evidence import events_by_day

            records = self.anchorer.records()
            mismatches = self.anchorer.verify(records, events_by_day(twin.log.events))
            if mismatches:
                raise RuntimeError(f"chain anchors do not match the event log: {mismatches[:3]}")
            return {"anchors": {"url": self.url, "chain_id": self.anchorer.chain.chain_id,
                                "address": self.anchorer.address, "account": self.anchorer.chain.account.address,
                                "records": records, "verified_in_process": True}}
        from contracts.chain import Chain
        from contracts.timebank import mirror_timebank

        tb = twin.services.timebank
        chain = Chain()
        # the log's first admin deployed the contract; the service's admin may have been rotated since
        admin = _first_admin(twin.log.events, tb.admin)
        on_chain = mirror_timebank(twin.log.events, chain, policy=tb.policy, admin=admin, endowment=tb.endowment)
        mine = {m: int(tb.ledger.balances[m]) for m in on_chain}
        differ = {m: (mine[m], b) for m, b in on_chain.items() if mine[m] != b}
        if differ:
            raise RuntimeError(f"time-bank contract balances differ from the twin's: {list(differ.items())[:5]}")
        return {"mirror": {"evm": "in-process py-evm", "url": None, "chain_id": chain.chain_id,
                           "transactions": chain.transactions, "members": len(on_chain), "balances_equal": True,
                           "minutes_exchanged": tb.minutes_exchanged()}}


def _first_admin(events: np.ndarray, admin: int) -> int:
    """The admin a log started with: the actor of its first AdminRotated event, else ``admin``."""
    from twin.services.events import EventKind

    rotated = events["actor"][events["kind"] == EventKind.AdminRotated]
    return int(rotated[0]) if len(rotated) else admin
