"""The twin's link to a chain: anchoring each day, mirroring the time bank.

``anchor`` posts, at each simulated day's end, the Merkle root of that day's
events (events whose time falls in the day, in log order) and the hash of
each vote tally resolved that day.  Since the in-process EVM ends with the
process, a run verifies its anchors before it returns; the records go to the
run folder's ``anchors.json`` so ``twin verify`` can re-check runs anchored
on a persistent node.  ``mirror`` replays the run's time-bank operations
onto the TimeBank contract and requires the same final balances.
"""
import os

import numpy as np

KEY_ENV = "TWIN_CHAIN_KEY"


class ChainLink:
    def __init__(self, cfg):
        self.mode, self.url = cfg.mode, cfg.url
        self.anchorer = None
        if self.mode == "anchor":
            from contracts.evidence import Anchorer

            self.anchorer = Anchorer(url=self.url, private_key=os.environ.get(KEY_ENV) if self.url else None)

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
        from contracts.timebank import mirror_timebank

        tb = twin.services.timebank
        on_chain = mirror_timebank(twin.log.events, policy=tb.policy, admin=tb.admin, endowment=tb.endowment)
        mine = {m: int(tb.ledger.balances[m]) for m in on_chain}
        differ = {m: (mine[m], b) for m, b in on_chain.items() if mine[m] != b}
        if differ:
            raise RuntimeError(f"time-bank contract balances differ from the twin's: {list(differ.items())[:5]}")
        return {"mirror": {"members": len(on_chain), "balances_equal": True,
                           "minutes_exchanged": tb.minutes_exchanged()}}
