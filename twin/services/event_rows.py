"""Events written from compiled code: a service core's accepted commands, one row each.

A batch method's core is a kernel (the engine calls it too, with a day's
commands), where :func:`twin.services.events.make` cannot be called; it writes
the same rows in place instead, into an :func:`~twin.services.events.empty` array
the caller sized, and the caller appends the rows written.  ``reason``, which
no service core's kind uses, stays zero, as ``make`` leaves it.
"""
from twin._jit import inline


@inline
def put_event(events, row, kind, t, actor, subject, target, amount, code, extra, channel):
    """Write one event at ``row`` of ``events``; return the next row."""
    e = events[row]
    e["t"] = t
    e["kind"] = kind
    e["actor"] = actor
    e["subject"] = subject
    e["target"] = target
    e["amount"] = amount
    e["code"] = code
    e["extra"] = extra
    e["channel"] = channel
    return row + 1
