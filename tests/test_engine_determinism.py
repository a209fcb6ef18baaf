"""Same seed and config → the identical event log, whatever the thread count (counter-based
draws), and whether the kernels are compiled or run as plain Python."""
import hashlib
import os
import subprocess
import sys

RUN = """
import hashlib, twin
cfg = twin.load_scenario("default", ["community.households=300", "community.buildings=6", "sim.days=20",
                                     "progress=false", "seed=11"])
r = twin.Twin(cfg).run()
print(hashlib.sha256(r.event_log.tobytes()).hexdigest())
"""


def log_hash(threads: int) -> str:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_event_log_is_identical_with_one_and_two_threads():
    assert log_hash(1) == log_hash(2)


def test_compiled_kernels_equal_their_plain_python_selves():
    """Every kernel run as plain Python (NUMBA_DISABLE_JIT=1) writes the very same event log."""
    small = RUN.replace("community.households=300", "community.households=60").replace(
        "community.buildings=6", "community.buildings=2").replace("sim.days=20", "sim.days=6")
    hashes = []
    for env in ({}, {"NUMBA_DISABLE_JIT": "1"}):
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", small], env=dict(os.environ, **env),
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        hashes.append(out.stdout.strip().splitlines()[-1])
    assert hashes[0] == hashes[1]


def test_different_seeds_give_different_logs():
    import twin

    a = twin.Twin(twin.load_scenario("default", ["community.households=100", "community.buildings=2",
                                                 "sim.days=10", "progress=false", "seed=1"])).run()
    b = twin.Twin(twin.load_scenario("default", ["community.households=100", "community.buildings=2",
                                                 "sim.days=10", "progress=false", "seed=2"])).run()
    assert hashlib.sha256(a.event_log.tobytes()).digest() != hashlib.sha256(b.event_log.tobytes()).digest()
