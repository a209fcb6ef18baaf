"""``twin serve``: open a store, optionally seed a demo community or load a roster, run the server.

A roster is a CSV file with the header ``id,household,building,unit,adult``
(one row per resident): each resident is registered as a voter, enrolled in
points and registered in the time bank, in one durable unit.  Rows already
registered are left as they are, so loading a roster twice is harmless.
"""
import csv
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

from twin.live import accounts as acc
from twin.services.community import open_services
from twin.services.reasons import AlreadyRegistered

#: The demo's staff: role -> id (time-bank members 0 and 1 are the bank's admin and endowment).
DEMO_STAFF = {"technician": 4, "social_worker": 5, "coordinator": 6, "admin": 7}
DEMO_RESIDENTS = range(100, 124)
#: Front processes are for a machine's cores; more than this is a typo.
MAX_FRONTS = 64


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
          window_s: float = 0.002, n_workers: int | None = None, mqtt: str | None = None,
          community: str = "c1", fronts: int = 0) -> int:
    """Run the server until interrupted (see ``twin serve --help``).

    ``fronts``: HTTP front processes before this one, the writer (:mod:`twin.live.front`); 0: one process.
    """
    if isinstance(fronts, bool) or not isinstance(fronts, int) or not 0 <= fronts <= MAX_FRONTS:
        raise ValueError(f"fronts: an integer from 0 to {MAX_FRONTS} (0: one process), got {fronts!r}")
    import uvicorn

    from twin.live.app import create_app

    with open_services(store, n_workers=n_workers) as services:
        publisher = None
        if mqtt is not None:
            from twin.live.publisher import EventPublisher

            publisher = EventPublisher(mqtt, community, services.service_of)
        if roster is not None:
            print(f"roster: {load_roster(services, roster)} new residents from {roster}")
        if demo:
            if len(services.log):
                print(f"demo: {store} already holds {len(services.log)} events; not seeding it again")
            else:
                tokens = seed_demo(services)
                print("demo community seeded; sign in as each role (links shown once):")
                for role, token in tokens.items():
                    print(f"  {role:<14} http://{host}:{port}/login?token={token}")
                print(f"  API: curl -H 'Authorization: Bearer {tokens['resident']}' "
                      f"http://{host}:{port}/api/v1/repair/tickets")
        processes = f", {fronts} front processes" if fronts else ""
        print(f"serving {store} on http://{host}:{port}/  (API http://{host}:{port}/api/v1, "
              f"docs http://{host}:{port}/docs{processes}); Ctrl-C stops", flush=True)
        try:
            app = create_app(services, window_s=window_s, publisher=publisher)
            if fronts:
                from twin.live.front import serve_with_fronts

                serve_with_fronts(app, host, port, fronts)
            else:
                with sigterm_exits():
                    uvicorn.run(app, host=host, port=port, log_level="warning")
        finally:
            if publisher is not None:
                publisher.close()
    return 0


@contextmanager
def sigterm_exits():
    """SIGTERM raises SystemExit inside: uvicorn re-raises the signal it stopped on, and a bare kill
    would skip closing the store (its snapshot, its clean-close flag) and removing private files."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _fronts(text: str) -> int:
    """``--fronts``: an integer 0..MAX_FRONTS, else a clear error naming the option."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_FRONTS:
        raise argparse.ArgumentTypeError(f"an integer from 0 to {MAX_FRONTS} "
                                         f"(0: one process), got {text!r}")
    return value


def add_user(store, role: str, id: int, name: str = "") -> str:
    """Create an account on a store no server holds (``twin users add``); returns the token."""
    with open_services(store) as services:
        return acc.add_account(services, role, id, name)


# ------------------------------------------------------------------ the command line
def add_commands(sub) -> None:
    """``twin serve`` and ``twin users add``, registered on the CLI's subparsers."""
    p = sub.add_parser("serve", help="run the community's production server over a store",
                       description="Serve the services over HTTP (API /api/v1, pages at /) on one store; "
                                   "this process is the store's one writer.")
    p.add_argument("--store", default="community.db", help="the SQLite store (default: %(default)s)")
    p.add_argument("--roster", default=None,
                   help="a CSV of residents (id,household,building,unit,adult) to register first")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None,
                   help="technicians on the desk's roster, ids 0..N-1 (default: any worker id)")
    p.add_argument("--mqtt", default=None, help="publish every event to this broker, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--community", default="c1", help="community id in MQTT topics (default: %(default)s)")
    p.add_argument("--demo", action="store_true", help="seed a demo community on an empty store and print logins")
    p.add_argument("--fronts", type=_fronts, default=0, metavar="N",
                   help="N front processes take the HTTP load and this process only applies and commits "
                        "(about one per core; default 0: one process does everything)")
    p.set_defaults(func=lambda a: serve(a.store, a.host, a.port, roster=a.roster, demo=a.demo,
                                        n_workers=a.workers, mqtt=a.mqtt, community=a.community,
                                        fronts=a.fronts))
    users = sub.add_parser("users", help="accounts of a store (the server must be stopped)")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    p = users_sub.add_parser("add", help="create an account; prints its token once")
    p.add_argument("--store", default="community.db", help="the SQLite store (default: %(default)s)")
    p.add_argument("--role", required=True, choices=acc.ROLES, help="the account's role")
    p.add_argument("--id", type=int, required=True, help="the person's id in the services")
    p.add_argument("--name", default="", help="a display name")
    p.set_defaults(func=lambda a: print(add_user(a.store, a.role, a.id, a.name)) or 0)
