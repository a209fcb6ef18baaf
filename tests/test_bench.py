"""The benchmarks run and report what they promise (tiny sizes; speed itself is never asserted)."""
import json
import subprocess
import sys

from twin.bench import chain, engine, reference, services, suite


def test_resident_steps_reports_rates_per_thread_count():
    r = engine.resident_steps(3000, threads=(1,), repeats=1)
    assert r["residents"] > 2000 and r["ticks_per_day"] == 24
    assert r["steps_per_s_1t"] > 0 and r["ns_per_resident_day_1t"] > 0


def test_state_bytes_counts_the_engine_state():
    r = engine.state_bytes(engine.scenario_for(2000, ["sim.days=1"]))
    assert 0 < r["bytes_per_resident_community"] < r["bytes_per_resident"]
    assert r["bytes_per_resident_services"] > 0


def test_references_run_side_by_side():
    m = reference.versus_mesa(n_residents=600, mesa_days=1, twin_days=2)
    assert m["speedup_vs_mesa"] > 0 and m["mesa_s_per_day"] > 0
    s = reference.versus_simpy(arrivals_per_hour=6.0, technicians=2, twin_days=2)
    assert s["speedup_vs_simpy"] > 0


def test_service_and_chain_benchmarks_report_their_keys():
    r = services.run(n_batches=2, n_single=50, repeats=1)
    for key in ("ledger_transfers_per_s", "ledger_transfers_per_s_single", "ticket_transitions_per_s",
                "ticket_transitions_per_s_single"):
        assert r[key] > 0
    c = chain.run(n=6)
    assert c and json.dumps(c)


def test_goals_are_judged_by_their_comparison():
    assert suite.meets(400.0, ">=", 300.0) and not suite.meets(76.0, ">=", 300.0)
    assert suite.meets(0.8, "<", 5.0) and not suite.meets(5.0, "<", 5.0)


def test_twin_bench_rejects_unknown_flags_clearly():
    out = subprocess.run([sys.executable, "-m", "twin.cli", "bench", "--bogus"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "--bogus" in out.stderr


def test_serve_benchmark_reports_its_keys_without_wrk():
    from twin.bench import serve

    r = serve.run(seconds=0.5, paced_seconds=0.5, warmup_seconds=0.2, connections=4, paced_rate=40, residents=10,
                  client="python", processes=1, log=lambda msg: None)
    assert r["serve_client"].startswith("python")
    for key in ("serve_writes_per_s", "serve_write_p50_ms", "serve_write_p99_ms", "serve_single_tx_writes_per_s",
                "serve_noop_per_s", "serve_reads_per_s", "serve_group_vs_single", "serve_paced_writes_per_s"):
        assert r[key] > 0, key
    assert r["serve_failed_requests"] == 0
    # every acknowledged write is a committed event (in-flight ones at the end may add a few)
    assert r["serve_write_events"] >= r["serve_write_acknowledged"] > 0
    assert set(r["goals"]) == set(serve.GOALS) and serve.table_rows(r)
    assert json.dumps(suite._jsonable(r))
