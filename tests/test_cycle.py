"""The `cycle` accuracy level's deterministic clock (runtime/clock.py) and its cost table
(translator/costs.py, calibrated by bench/calibrate_costs.py).

The guest (guests/libc/timing.c) prints rdtsc differences, clock_gettime, gettimeofday and time()
values, the length of a loop that spins until the clock advances 1 ms, and sleeps measured by
the clock. At `--accuracy cycle` two runs print the same bytes; at `--accuracy block` (host
clock) they do not, which shows the comparison can fail. Values are checked by relations only.
"""
from __future__ import annotations

import re
import struct
import sys
from types import SimpleNamespace

import pytest
from conftest import BUILD, ROOT, clean_env, run_jitbt

from runtime import clock
from translator import costs
from translator.decoder import disassemble

GUEST = "timing-musl"       # musl: small, so a cold translation at unit=block stays quick


def _values(stdout: bytes) -> dict[str, int]:
    out = {}
    for line in stdout.decode().splitlines():
        name, value = line.split()
        out[name] = int(value)
    return out


@pytest.fixture(scope="module")
def cycle_runs():
    """The guest run twice at --accuracy cycle (the second with --stats)."""
    path = BUILD / GUEST
    first = run_jitbt("run", "--accuracy", "cycle", path, env=clean_env())
    second = run_jitbt("run", "--accuracy", "cycle", "--stats", path, env=clean_env())
    for r in (first, second):
        assert r.returncode == 0, r.stderr.decode()
    return first, second


def test_two_cycle_runs_print_the_same_bytes(cycle_runs):
    first, second = cycle_runs
    assert first.stdout == second.stdout
    assert first.stdout.count(b"\n") >= 16


def test_modelled_time_is_plausible(cycle_runs):
    v = _values(cycle_runs[0].stdout)
    ns_per_s = 10**9
    # every clock starts where the model says and only moves forward
    assert v["realtime_ns"] >= clock.EPOCH_NS
    assert v["monotonic_ns"] >= clock.BOOT_NS
    assert v["realtime_end_ns"] > v["realtime_ns"]
    assert v["monotonic_end_ns"] > v["monotonic_ns"]
    assert v["realtime_ns"] // 1000 <= v["gettimeofday_us"] <= v["realtime_end_ns"] // 1000
    assert v["realtime_ns"] // ns_per_s <= v["time_s"] <= v["realtime_end_ns"] // ns_per_s
    # the loop of 100000 iterations retires more than 100000 instructions of >= 1 cycle each
    assert v["rdtsc_loop_ticks"] >= 100_000
    assert 0 < v["rdtsc_back_to_back_ticks"] < v["rdtsc_loop_ticks"]
    # the spin loop ends because modelled time advanced, not at its iteration limit
    assert 1 < v["spin_iterations"] < 5_000_000
    assert v["spin_ns"] >= 1_000_000
    # sleeps advance the clock by at least what was asked, and rdtsc with it
    assert v["nanosleep_measured_ns"] >= v["nanosleep_requested_ns"]
    assert v["nanosleep_rdtsc_ticks"] * ns_per_s >= v["nanosleep_requested_ns"] * costs.NOMINAL_HZ
    assert v["clock_nanosleep_measured_ns"] >= v["clock_nanosleep_requested_ns"]
    # CPU time does not count the sleeps; elapsed time (since the first instruction) does
    slept = v["nanosleep_requested_ns"] + v["clock_nanosleep_requested_ns"]
    since_start = v["monotonic_end_ns"] - clock.BOOT_NS
    assert 0 < v["process_cputime_ns"] <= since_start - slept + 2     # 2: rounding to ns
    assert v["monotonic_end_ns"] - v["monotonic_ns"] >= slept + v["spin_ns"]


def test_stats_report_modelled_cycles(cycle_runs):
    _, second = cycle_runs
    stats = second.stderr.decode()
    m = re.search(r"modelled cycles\s+(\d+)", stats)
    assert m is not None, stats
    cycles = int(m.group(1))
    v = _values(second.stdout)
    # the guest read its CPU-time clock shortly before exiting
    assert clock.cycles_to_ns(cycles) >= v["process_cputime_ns"] > 0
    n = re.search(r"instructions retired\s+(\d+)", stats)
    if n:
        assert cycles >= int(n.group(1))          # every instruction costs at least one cycle


def test_host_clock_runs_differ():
    """The same comparison at the default level fails: the test can tell."""
    path = BUILD / GUEST
    a = run_jitbt("run", "--accuracy", "block", path, env=clean_env())
    b = run_jitbt("run", "--accuracy", "block", path, env=clean_env())
    assert a.returncode == b.returncode == 0
    assert a.stdout != b.stdout
    assert _values(a.stdout).keys() == _values(b.stdout).keys()


# ---- the virtual clock on its own ----------------------------------------------------------

def _machine(cycles=0):
    return SimpleNamespace(state=SimpleNamespace(cycles=cycles))


def test_virtual_clock_relations():
    m = _machine()
    t0 = {c: clock.now_ns(m, c) for c in (0, 1, 2, 3, 4, 5, 6, 7, 11)}
    m.state.cycles += costs.NOMINAL_HZ                       # one modelled second of work
    t1 = {c: clock.now_ns(m, c) for c in t0}
    for c, before in t0.items():
        if c in (clock.CLOCK_REALTIME_COARSE, clock.CLOCK_MONOTONIC_COARSE):
            assert abs(t1[c] - before - 10**9) < clock.COARSE_NS and t1[c] % clock.COARSE_NS == 0
        else:
            assert t1[c] - before == 10**9
    tsc = clock.tsc(m)
    clock.sleep(m, 250_000_000)
    assert clock.tsc(m) - tsc >= 250_000_000 * costs.NOMINAL_HZ // 10**9
    assert clock.now_ns(m, clock.CLOCK_PROCESS_CPUTIME_ID) == t1[2]   # sleeping uses no CPU
    assert clock.now_ns(m, clock.CLOCK_MONOTONIC) >= t1[1] + 250_000_000
    deadline = clock.now_ns(m, clock.CLOCK_REALTIME) + 123_456_789
    clock.sleep_until(m, clock.CLOCK_REALTIME, deadline)
    assert clock.now_ns(m, clock.CLOCK_REALTIME) >= deadline
    clock.sleep_until(m, clock.CLOCK_MONOTONIC, 0)           # a deadline in the past
    with pytest.raises(OSError):
        clock.now_ns(m, 99)
    with pytest.raises(OSError):
        clock.resolution_ns(99)
    assert clock.resolution_ns(clock.CLOCK_MONOTONIC_COARSE) > clock.resolution_ns(1) >= 1


def test_virtual_rusage_and_times():
    m = _machine(3 * costs.NOMINAL_HZ)
    user_sec, user_usec = struct.unpack("<qq", clock.rusage(m, clock.RUSAGE_SELF)[:16])
    assert (user_sec, user_usec) == (3, 0)
    buf, ticks = clock.tms(m)
    assert struct.unpack("<q", buf[:8])[0] == 3 * clock.CLOCK_TICKS
    assert ticks >= 3 * clock.CLOCK_TICKS


# ---- the cost table ----------------------------------------------------------------------------

def test_every_class_of_the_table_is_calibrated():
    sys.path.insert(0, str(ROOT / "bench"))
    import calibrate_costs
    measured = {s.name for s in calibrate_costs.SPECS}
    assert set(costs.TABLE) <= measured
    assert set(costs.REP_TABLE) <= measured | set(calibrate_costs.REP_SAME)
    assert all(v >= 1 for k, v in costs.TABLE.items() if not k.startswith("mem_"))
    assert costs.CALIBRATED and costs.NOMINAL_HZ > 10**8


def test_costs_of_instructions():
    from translator.conformance.hostcpu import assemble
    code = assemble("add rax, rbx; add rax, [rbx]; add [rbx], rax; mov rax, [rbx]; "
                    "lea rax, [rbx+8]; div rcx; div cl; imul rax, rcx; sqrtsd xmm0, xmm1; "
                    "addsd xmm0, xmm1;"
                    "fsin; rep stosq; syscall; cpuid; nop")
    c = {i.describe().split("  ", 1)[1]: costs.cost(i) for i in disassemble(code, 0)}
    add, lea = c["add rax, rbx"], c["lea rax, [rbx + 8]"]
    assert add == lea == c["nop"] == 1
    assert c["add rax, qword ptr [rbx]"] == add + costs.TABLE["mem_read"]
    assert c["add qword ptr [rbx], rax"] == add + costs.TABLE["mem_rmw"]
    assert c["div rcx"] == costs.TABLE["div64"] and c["div cl"] == costs.TABLE["div8"]
    assert c["sqrtsd xmm0, xmm1"] >= c["addsd xmm0, xmm1"]
    assert c["fsin"] > c["div rcx"] > add
    assert c["syscall"] > c["fsin"]
    stos = next(i for i in disassemble(code, 0) if i.mnemonic == "stosq")
    assert costs.rep_cost(stos) > 0 and costs.rep_cost(disassemble(code, 0)[0]) == 0


def test_every_mnemonic_with_semantics_has_a_cost():
    from translator.decoder import Insn
    from translator.semantics import SEMANTICS
    for mnemonic in SEMANTICS:
        insn = Insn(0, 1, b"\x90", mnemonic, "", [])
        assert costs.cost(insn) >= 1, mnemonic
        assert costs.classify(insn) in costs.TABLE or costs.classify(insn) == "rep_start"

