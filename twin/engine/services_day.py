"""The residents' commands of a day, handed to each service in one compiled call.

The engine's commands are well formed by construction (int64 ids of enrolled
residents, finite minutes), so they skip the batch methods' input checks and go
straight to the same compiled cores the batch methods wrap (``_earn_core``,
``_redeem_core``, ``_record_core``, ``_settle_core``): one implementation of
each rule, and no Python between the commands of a day.  The events come back
as rows, in the order the batch methods would have logged them, and how the
residents feel about what happened is added here too.
"""
import numpy as np

from twin._jit import kernel
from twin.services import events as ev
from twin.services.points import _earn_core, _redeem_core
from twin.services.repair import _COMPLETE, _RATE, _transition_core
from twin.services.timebank import _record_core, _settle_core


@kernel
def _points_day(balances, floors, n_acc, enrolled, per_unit, cap, last_day, earned_today, claims, cost, stock,
                journal, jn, who, activity, occurrence, units, t, redeemer, item, t_redeem, feel_activity,
                feel_redeem, experience, events):
    """Claims in order, then redemptions; an accepted one adds to the resident's experience."""
    out = np.zeros(who.shape[0], np.int16)
    jn, ne = _earn_core(balances, floors, n_acc, enrolled, per_unit, cap, last_day, earned_today, claims, journal,
                        jn, who, activity, occurrence, units, t, out, events, 0)
    for i in range(who.shape[0]):
        if out[i] == 0:
            experience[who[i]] += feel_activity
    out = np.zeros(redeemer.shape[0], np.int16)
    jn, ne = _redeem_core(balances, floors, n_acc, enrolled, cost, stock, journal, jn, redeemer, item, t_redeem,
                          out, events, ne)
    for i in range(redeemer.shape[0]):
        if out[i] == 0:
            experience[redeemer[i]] += feel_redeem
    return jn, ne


@kernel
def _timebank_day(role, rec, n_rec, balances, floors, n_acc, staff_confirm, journal, jn, giver, receiver, minutes,
                  kind, t, confirm_delay, member_offset, feel_helped, experience, events):
    """Each giver records the help given, then each receiver confirms it (``confirm_delay`` after it ends).

    Returns the record count, the next journal and event rows, the minutes confirmed and the
    confirmations refused.  A receiver helped twice in a day feels it once (as numpy's
    ``experience[idx] += v`` does with a repeated index).
    """
    n = giver.shape[0]
    out, ids = np.zeros(n, np.int16), np.empty(n, np.int64)
    n_rec, ne = _record_core(role, rec, n_rec, giver, giver, receiver, minutes, kind, t, out, ids, events, 0)
    ok = np.flatnonzero(out == 0)
    by, record, when = receiver[ok], ids[ok], t[ok] + minutes[ok] + confirm_delay
    confirmed = np.zeros(ok.shape[0], np.int16)
    jn, ne = _settle_core(role, rec, n_rec, balances, floors, n_acc, journal, jn, by, record, 0,
                          np.ones(ok.shape[0], np.int64), staff_confirm, when, confirmed, events, ne)
    felt = np.empty(ok.shape[0], experience.dtype)
    total, refused = 0, 0
    for j in range(ok.shape[0]):
        if confirmed[j] == 0:
            total += minutes[ok[j]]
            felt[j] = experience[by[j] - member_offset] + feel_helped
        else:
            refused += 1
    for j in range(ok.shape[0]):
        if confirmed[j] == 0:
            experience[by[j] - member_offset] = felt[j]
    return n_rec, jn, ne, total, refused


@kernel
def _repair_day(tickets, n_tickets, n_workers, max_priority, escalation_step, reopen_window, ticket, action, arg, t,
                feel_rating, experience, events):
    """The day's due transitions (grouped by action, each in time order) through the desk's core.

    A rating moves the reporter's experience by ``feel_rating`` a star above or below three (0: not
    at all).  Returns the next event row and the tickets completed.
    """
    reasons = np.zeros(ticket.shape[0], np.int16)
    ne = _transition_core(tickets, n_tickets, ticket, action, arg, np.zeros(ticket.shape[0], np.int64), t,
                          n_workers, max_priority, escalation_step, reopen_window, reasons, events, 0)
    completed = 0
    for i in range(ticket.shape[0]):
        if reasons[i] == 0:
            if action[i] == _COMPLETE:
                completed += 1
            elif action[i] == _RATE and feel_rating != 0.0:
                experience[tickets.reporter[ticket[i]]] += feel_rating * (arg[i] - 3)
    return ne, completed


def points_day(points, who, activity, occurrence, units, t, redeemer, item, t_redeem, feel_activity, feel_redeem,
               experience, log) -> None:
    """The day's claims (in time order) and redemptions, through the points service's cores, logged."""
    L = points.ledger
    n = len(who) + len(redeemer)
    journal, jn = L.reserve(n)
    events = ev.empty(n)
    jn, ne = _points_day(L.balances, L.floors, L.n, points.enrolled, points.per_unit, points.cap, points._last_day,
                         points._earned_today, points.claims, points.cost, points.stock, journal, jn, who, activity,
                         occurrence, units, t, redeemer, item, t_redeem, np.float32(feel_activity),
                         np.float32(feel_redeem), experience, events)
    L.entered(jn)
    log.append(events[:ne])


def repair_day(desk, rows, feel_rating, experience, log) -> int:
    """Staff's transitions due today (``TransitionQueue.pop_until``'s rows) through the desk's core,
    logged; returns the tickets completed."""
    events = ev.empty(len(rows))
    ticket, action, arg, t = (np.ascontiguousarray(rows[f], dtype) for f, dtype in (
        ("ticket", np.int64), ("action", np.int64), ("arg", np.int64), ("t", np.float64)))
    ne, completed = _repair_day(desk.state, desk.n_tickets, *desk._rules, ticket, action, arg, t, float(feel_rating),
                                experience, events)
    log.append(events[:ne])
    return int(completed)


def timebank_day(tb, giver, receiver, minutes, kind, t, confirm_delay, member_offset, feel_helped, experience,
                 log) -> tuple[int, int]:
    """Help recorded and confirmed through the time bank's cores, logged; (minutes confirmed, refusals)."""
    n = len(giver)
    tb.reserve_records(n)
    L = tb.ledger
    journal, jn = L.reserve(n)
    events = ev.empty(2 * n)
    n_rec, jn, ne, total, refused = _timebank_day(
        tb.role, tb.records, tb.n_records, L.balances, L.floors, L.n, bool(tb.policy.staff_confirm), journal, jn,
        giver, receiver, minutes, kind, t, float(confirm_delay), member_offset, np.float32(feel_helped), experience,
        events)
    tb.n_records = int(n_rec)
    L.entered(jn)
    log.append(events[:ne])
    return int(total), int(refused)
