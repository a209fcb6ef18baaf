"""Reason codes: why a command was refused, shared by every service.

One ``IntEnum`` serves the batch kernels (as ``int16`` codes), the object
layer's exceptions (one exception class per reason, same name) and the
Solidity contracts' custom errors (same names; ``contracts/`` checks the
numbers).  Numbers are stable: append, never renumber.
"""
from enum import IntEnum


class Reason(IntEnum):
    Accepted = 0
    # ledger
    UnknownAccount = 1
    InvalidAmount = 2
    SameAccount = 3
    InsufficientBalance = 4
    # points
    UnknownActivity = 5
    DuplicateClaim = 6
    DailyCapReached = 7
    UnknownItem = 8
    OutOfStock = 9
    # time bank
    UnknownMember = 10
    AlreadyRegistered = 11
    SelfService = 12
    UnknownRecord = 13
    NotPending = 14
    NotDisputed = 15
    Unauthorized = 16
    PolicyForbids = 17
    # repair desk
    MissingField = 18
    UnknownTicket = 19
    InvalidTransition = 20
    InvalidRating = 21
    AlreadyRated = 22
    ReopenWindowExpired = 23
    UnknownWorker = 24
    # voting
    UnknownTopic = 25
    TopicNotOpen = 26
    NotEligible = 27
    DuplicateBallot = 28
    InvalidBallot = 29
    NoticePeriodNotOver = 30
    # time bank (appended)
    InvalidRole = 31
    # service inputs, any service (appended)
    InvalidTime = 32            # a time that is not a finite number
    BeforeSubmission = 33       # a ticket step timestamped before the ticket was submitted
    NotAnInteger = 34           # a count, id, rating or minutes with a fraction, or not a number
    UnknownKind = 35            # an enum code outside its members (service kind, role, ...)
    UnknownCategory = 36        # a repair category the desk does not know
    InvalidId = 37              # a resident or member id that is negative or above the bound
    TextTooLong = 38            # free text over the service's limit
    # time bank governance (appended)
    EndowmentExhausted = 39     # the endowment's budget is spent
    ConfirmationRequired = 40   # the receiver (or a second staff member) must confirm


class ServiceError(Exception):
    """A refused command, raised by the single-command object layer.

    ``reason`` is the :class:`Reason`; the message says what was refused and why.
    """

    reason = Reason.Accepted

    def __init__(self, message=""):
        super().__init__(message or self.reason.name)


#: One exception class per reason, named exactly like the reason.
EXCEPTIONS: dict[Reason, type[ServiceError]] = {
    r: type(r.name, (ServiceError,), {"reason": r, "__module__": __name__})
    for r in Reason
    if r is not Reason.Accepted
}
globals().update({cls.__name__: cls for cls in EXCEPTIONS.values()})


def raise_for(code, what: str = "") -> None:
    """Raise the exception for ``code`` unless it is ``Accepted``."""
    reason = Reason(int(code))
    if reason is not Reason.Accepted:
        raise EXCEPTIONS[reason](f"{what}: {reason.name}" if what else reason.name)


__all__ = ["Reason", "ServiceError", "EXCEPTIONS", "raise_for"] + [c.__name__ for c in EXCEPTIONS.values()]
