"""Accounts, roles and API tokens of the production server.

An account is a role and an id: the id is the person's id in the services
(a resident's id, a technician's worker id, a staff member's time-bank
member id).  Tokens are random and shown once; the store keeps only their
SHA-256 hash, as a side record of the log (``EventLog.detail``), so accounts
are durable, committed like everything else, and never appear in events.
"""
import hashlib
import json
import secrets
from dataclasses import dataclass

ROLES = ("resident", "technician", "social_worker", "coordinator", "admin")
STAFF = frozenset(ROLES[1:])

#: Side records live under these subjects in the log's details (events never use negative ids).
ACCOUNTS_SUBJECT = -1
_PREFIX = "account/"
ROSTER_FIELD = "technician"


@dataclass(frozen=True)
class Principal:
    """Who is calling: their role, their id in the services and a display name."""

    role: str
    id: int
    name: str = ""

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_account(services, role: str, id: int, name: str = "") -> str:
    """Create an account; returns its token (shown once, stored hashed)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; allowed roles: {', '.join(ROLES)}")
    if isinstance(id, bool) or not isinstance(id, int) or id < 0:
        raise ValueError(f"an account's id is an integer >= 0, got {id!r}")
    token = secrets.token_urlsafe(32)
    record = json.dumps({"role": role, "id": id, "name": str(name)[:200]})
    with services.unit():
        services.log.detail(ACCOUNTS_SUBJECT, _PREFIX + token_hash(token), record)
        if role == "technician":  # the repair desk's live roster: who may be dispatched
            services.log.detail(id, ROSTER_FIELD, str(name)[:200] or f"technician {id}")
    return token


def is_technician(services, id) -> bool:
    """Whether ``id`` has a technician account (the live desk's roster)."""
    return id in services.log.details.get(ROSTER_FIELD, {})


def principal_for(services, token: str) -> Principal | None:
    """The account a token belongs to, or None."""
    record = services.log.details.get(_PREFIX + token_hash(token), {}).get(ACCOUNTS_SUBJECT)
    if record is None:
        return None
    fields = json.loads(record)
    return Principal(fields["role"], int(fields["id"]), fields.get("name", ""))


def accounts(services) -> list[Principal]:
    """Every account (without tokens: only their hashes are kept)."""
    return [Principal(**{k: v for k, v in json.loads(texts[ACCOUNTS_SUBJECT]).items()})
            for field, texts in services.log.details.items()
            if field.startswith(_PREFIX) and ACCOUNTS_SUBJECT in texts]
