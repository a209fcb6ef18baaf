"""Repair transitions that staff will make in the future, applied when their time comes.

Dispatching a ticket fixes when it will be dispatched, started, completed and
rated; those commands wait here and are handed to the repair desk on the day
they happen.
"""
import numpy as np

from twin.services.events import join_records
from twin.services.repair import Action

_DTYPE = np.dtype([("t", "f8"), ("action", "i1"), ("ticket", "i8"), ("arg", "i8")])


class TransitionQueue:
    def __init__(self):
        self._q = np.zeros(0, _DTYPE)
        self._pushed = []  # rows pushed since the last pop, in push order (joined to the queue once, at the pop)

    def __len__(self):
        return len(self._q) + sum(len(rows) for rows in self._pushed)

    def push(self, t, action: Action, ticket, arg=0) -> None:
        rows = np.zeros(np.size(ticket), _DTYPE)
        rows["t"], rows["action"], rows["ticket"], rows["arg"] = t, int(action), ticket, arg
        self._pushed.append(rows)

    def pop_until(self, t_end: float) -> np.ndarray:
        """Every queued transition before ``t_end``, by action, each action in time order.

        Grouping by action hands the desk a few large batches instead of many
        runs of one or two; it is safe because transitions of different
        tickets commute, and one ticket's own transitions come in action
        order (dispatch, start, complete, rate) with increasing times.
        """
        if self._pushed:
            self._q = join_records((self._q, *self._pushed), _DTYPE)
            self._pushed = []
        due = self._q["t"] < t_end
        out = self._q[due]
        self._q = self._q[~due]
        # np.sort(out, order=("action", "t")) — ties broken by the other fields, as that does — without
        # its field-by-field comparisons (several times slower)
        return out[np.lexsort((out["arg"], out["ticket"], out["t"], out["action"]))]
