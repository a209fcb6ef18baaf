"""``twin serve``: open a store, optionally seed a demo community or load a roster, run the server.

A roster is a CSV file with the header ``id,household,building,unit,adult``
(one row per resident): each resident is registered as a voter, enrolled in
points and registered in the time bank, in one durable unit.  Rows already
registered are left as they are, so loading a roster twice is harmless.
"""
import csv
from pathlib import Path

from twin.live import accounts as acc
from twin.services.community import open_services
from twin.services.reasons import AlreadyRegistered

#: The demo's staff: role -> id (time-bank members 0 and 1 are the bank's admin and endowment).
DEMO_STAFF = {"technician": 4, "social_worker": 5, "coordinator": 6, "admin": 7}
DEMO_RESIDENTS = range(100, 124)


def load_roster(services, path) -> int:
    """Register the residents of a roster CSV (see the module docstring); returns how many were new."""
    rows = list(csv.DictReader(Path(path).read_text(encoding="utf-8").splitlines()))
    need = {"id", "household", "adult"}
    if not rows or not need <= set(rows[0]):
        raise ValueError(f"{path}: a roster needs the columns {', '.join(sorted(need))} (and building, unit)")
    new = 0
    with services.unit():
        for line, row in enumerate(rows, start=2):
            try:
                rid, household = int(row["id"]), int(row["household"])
                adult = row["adult"].strip().lower() in ("1", "true", "yes", "y")
            except ValueError as exc:
                raise ValueError(f"{path}, line {line}: {exc}") from None
            services.voting.register_voters([rid], [household], [adult])
            try:
                services.points.enroll(rid)
                services.timebank.register(rid, household=household)
                new += 1
            except AlreadyRegistered:
                pass
    return new


def seed_demo(services) -> dict[str, str]:
    """A small demo community on an empty store: residents, staff accounts, open tickets, a topic.

    Returns a token per role (the resident's is resident 100's).
    """
    s = services
    with s.unit():
        households = [100 + (r - 100) // 2 for r in DEMO_RESIDENTS]
        s.voting.register_voters(list(DEMO_RESIDENTS), households, [True] * len(DEMO_RESIDENTS))
        s.points.enroll_batch(list(DEMO_RESIDENTS))
        s.timebank.register_batch(0, list(DEMO_RESIDENTS), household=households)
        for role, id in DEMO_STAFF.items():
            s.timebank.register(id, role="coordinator" if role in ("coordinator", "admin") else "member")
        s.points.earn(100, 0, occurrence=1)
        for i, (category, description) in enumerate((("plumbing", "厨房水槽漏水 kitchen sink leaking"),
                                                     ("electrical", "楼道灯不亮 stairwell light out"),
                                                     ("elevator", "电梯异响 elevator noise"))):
            s.repair.submit(category, description, building=1 + i, unit=101 + i, reporter=100 + i)
        topic = s.voting.propose(100, "plurality", 3)
        s.voting.screen(topic, screener=DEMO_STAFF["coordinator"])
    tokens = {role: acc.add_account(s, role, id, f"demo {role}") for role, id in DEMO_STAFF.items()}
    tokens["resident"] = acc.add_account(s, "resident", 100, "demo resident")
    return tokens


def serve(store, host: str = "127.0.0.1", port: int = 8000, roster=None, demo: bool = False,
          window_s: float = 0.002) -> int:
    """Run the server until interrupted (see ``twin serve --help``)."""
    import uvicorn

    from twin.live.app import create_app

    with open_services(store) as services:
        if roster is not None:
            print(f"roster: {load_roster(services, roster)} new residents from {roster}")
        if demo:
            if len(services.log):
                print(f"demo: {store} already holds {len(services.log)} events; not seeding it again")
            else:
                tokens = seed_demo(services)
                print("demo community seeded; one token per role (shown once):")
                for role, token in tokens.items():
                    print(f"  {role:<14} {token}")
                print(f"  try: curl -H 'Authorization: Bearer {tokens['resident']}' "
                      f"http://{host}:{port}/api/v1/repair/tickets")
        print(f"serving {store} on http://{host}:{port}/  (API http://{host}:{port}/api/v1, "
              f"docs http://{host}:{port}/docs); Ctrl-C stops")
        uvicorn.run(create_app(services, window_s=window_s), host=host, port=port, log_level="warning")
    return 0


def add_user(store, role: str, id: int, name: str = "") -> str:
    """Create an account on a store no server holds (``twin users add``); returns the token."""
    with open_services(store) as services:
        return acc.add_account(services, role, id, name)
