"""The engine's commands of a day, handed straight to the services' compiled cores.

The engine's commands are well formed by construction (int64 ids of enrolled
residents, finite minutes), so they skip the batch methods' input checks and go
where the batch methods go once their checks pass: each service's ``_*_checked``
method (``Points._earn_checked``, ``TimeBank._settle_checked``,
``RepairDesk._transition_checked``, ...), which runs the compiled core.  One
implementation of each rule, one kernel call per kind of command a day, and the
events come back as rows, in the order the batch methods would have logged
them.  How residents feel about what happened is added here, as the engine did
around the batch methods.

The cores are called from Python rather than from engine kernels on purpose:
numba compiles a kernel called from another kernel apart from the same kernel
called from Python (the live server's batch methods), so engine kernels around
the cores would compile each of them twice on a cold start.
"""
import numpy as np

from twin.services import events as ev
from twin.services.repair import Action

_CONFIRM = 0  # TimeBank._settle_checked's action code for a confirmation
#: Staff schedule the first four actions (dispatch, start, complete, rate); cancelling, reopening
#: and escalating are residents' and managers' commands, never queued.
_STAFF_ACTIONS = (Action.dispatch, Action.start, Action.complete, Action.rate)
assert [int(a) for a in _STAFF_ACTIONS] == list(range(len(_STAFF_ACTIONS)))


def points_day(points, who, activity, occurrence, units, t, redeemer, item, t_redeem, feel_activity, feel_redeem,
               experience, log) -> None:
    """The day's claims (in time order), then its redemptions, through the points service's cores, logged.

    An accepted claim adds ``feel_activity`` to the resident's experience, an accepted redemption
    ``feel_redeem``.
    """
    events = ev.empty(len(who) + len(redeemer))
    earned = np.zeros(len(who), np.int16)
    ne = points._earn_checked(who, activity, occurrence, units, t, earned, events, 0)
    redeemed = np.zeros(len(redeemer), np.int16)
    ne = points._redeem_checked(redeemer, item, t_redeem, redeemed, events, ne)
    log.append(events[:ne])
    np.add.at(experience, who[earned == 0], feel_activity)
    experience[redeemer[redeemed == 0]] += feel_redeem


def timebank_day(tb, giver, receiver, minutes, kind, t, confirm_delay, member_offset, feel_helped, experience,
                 log) -> tuple[int, int]:
    """Each giver records the help given, then each receiver confirms it ``confirm_delay`` after it
    ends, through the time bank's cores, logged; returns (minutes confirmed, confirmations refused).

    A confirmed receiver (member id - ``member_offset``) feels ``feel_helped``, once a day however
    often helped (numpy's ``a[idx] += v``).
    """
    n = len(giver)
    events = ev.empty(2 * n)
    recorded, ids = np.zeros(n, np.int16), np.empty(n, np.int64)
    ne = tb._record_checked(giver, giver, receiver, minutes, kind, t, recorded, ids, events, 0)
    ok = recorded == 0
    by = receiver[ok]
    confirmed = np.zeros(len(by), np.int16)
    ne = tb._settle_checked(_CONFIRM, by, ids[ok], np.ones(len(by), np.int64), t[ok] + minutes[ok] + confirm_delay,
                            confirmed, events, ne)
    log.append(events[:ne])
    accepted = confirmed == 0
    experience[by[accepted] - member_offset] += feel_helped
    return int(minutes[ok][accepted].sum()), int((~accepted).sum())


def submit_day(desk, reporter, category, building, channel, priority, t, log) -> np.ndarray:
    """The day's reports (in time order) as tickets through the desk's core, logged; their ids
    (-1 for a refused one: none expected, the engine fills every field)."""
    n = len(t)
    ids, events = np.empty(n, np.int64), ev.empty(n)
    ne = desk._submit_checked(reporter, category, building, np.zeros(n, np.int64), channel, priority,
                              np.ones(n, np.bool_), t, np.zeros(n, np.int16), ids, events, 0)
    log.append(events[:ne])
    return ids


def repair_day(desk, rows, feel_rating, experience, log) -> int:
    """Staff's transitions due today (``TransitionQueue.pop_until``'s rows: by action, each in time
    order) through the desk's core, logged; returns the tickets completed.

    An accepted rating moves the reporter's experience by ``feel_rating`` a star above or below
    three (0: not at all).
    """
    n = len(rows)
    other = np.flatnonzero((rows["action"] < 0) | (rows["action"] >= len(_STAFF_ACTIONS)))
    if len(other):
        raise ValueError(f"staff do not schedule {Action(int(rows['action'][other[0]])).name}")
    ticket, action, arg, t = (np.ascontiguousarray(rows[f], dtype) for f, dtype in (
        ("ticket", np.int64), ("action", np.int64), ("arg", np.int64), ("t", np.float64)))
    reasons, events = np.zeros(n, np.int16), ev.empty(n)
    ne = desk._transition_checked(ticket, action, arg, np.zeros(n, np.int64), t, reasons, events, 0)
    log.append(events[:ne])
    ok = reasons == 0
    if feel_rating:
        rated = ok & (action == Action.rate)
        np.add.at(experience, desk.state.reporter[ticket[rated]], feel_rating * (arg[rated] - 3))
    return int(np.count_nonzero(ok & (action == Action.complete)))
