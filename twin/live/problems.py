"""Refusals as RFC 9457 problem documents, one ``type`` per :class:`Reason`.

The status of each reason is decided here, once, by what the client should
do about it:

=====  ==================================================================
404    the subject does not exist (``Unknown*``)
409    the subject's state forbids it now (transitions, duplicates, balances,
       stock, caps, closed votes, budgets spent)
422    the request itself is wrong (missing fields, bad amounts, ids, times,
       text too long, invalid ballots)
403    the caller's role or identity may not do it (``Unauthorized``,
       ``NotEligible``, ``PolicyForbids``, ``ConfirmationRequired``)
401    no valid credentials (the server's own ``unauthenticated`` type)
503    the store could not record it: nothing was applied, retry
=====  ==================================================================
"""
from fastapi.responses import JSONResponse

from twin.services.reasons import Reason, ServiceError

PROBLEM = "application/problem+json"
TYPE_BASE = "https://community-twin.org/problems/"

_NOT_FOUND = {Reason.UnknownAccount, Reason.UnknownActivity, Reason.UnknownItem, Reason.UnknownMember,
              Reason.UnknownRecord, Reason.UnknownTicket, Reason.UnknownWorker, Reason.UnknownTopic}
_FORBIDDEN = {Reason.Unauthorized, Reason.NotEligible, Reason.PolicyForbids, Reason.ConfirmationRequired}
_UNPROCESSABLE = {Reason.InvalidAmount, Reason.SameAccount, Reason.MissingField, Reason.InvalidRating,
                  Reason.InvalidBallot, Reason.InvalidRole, Reason.SelfService, Reason.InvalidTime,
                  Reason.NotAnInteger, Reason.UnknownKind, Reason.UnknownCategory, Reason.InvalidId,
                  Reason.TextTooLong}


def status_of(reason: Reason) -> int:
    """The HTTP status a refusal for ``reason`` is answered with (see the module docstring)."""
    if reason in _NOT_FOUND:
        return 404
    if reason in _FORBIDDEN:
        return 403
    if reason in _UNPROCESSABLE:
        return 422
    return 409


def problem_body(status: int, type_: str, detail: str, **extra) -> dict:
    """A problem document; ``type_`` is a Reason name or one of the server's own types."""
    return {"type": TYPE_BASE + type_, "title": type_, "status": status, "detail": detail, **extra}


def problem(status: int, type_: str, detail: str, **extra) -> JSONResponse:
    """A problem+json response (see :func:`problem_body`)."""
    return JSONResponse(problem_body(status, type_, detail, **extra), status_code=status, media_type=PROBLEM)


def refusal(exc: Exception) -> tuple[int, dict]:
    """A refused command's status and problem document: its Reason's, or ``InvalidValue`` (422) for a ValueError."""
    if isinstance(exc, ServiceError):
        status, name = status_of(exc.reason), exc.reason.name
    else:
        status, name = 422, "InvalidValue"
    return status, problem_body(status, name, str(exc))
