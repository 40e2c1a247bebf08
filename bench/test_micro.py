"""Micro-benchmarks (pytest-benchmark): translation throughput and native dispatch cost.

    .venv/bin/python -m pytest bench/test_micro.py --benchmark-only

These measure; they never fail on speed. The printed extra_info gives guest instructions per
second for translation, nanoseconds per block through the dispatcher loop, and nanoseconds per
chained transfer between optimised translations.
"""
from __future__ import annotations

import ctypes
import time
from pathlib import Path

import pytest

from runtime.machine import Machine, Options
from translator.knobs import Knobs
from translator.state import Exit

NOT_HOT = 1 << 63          # a hot threshold never reached: nothing stops to be promoted

ROOT = Path(__file__).resolve().parent.parent
GUEST = ROOT / "guests" / "build" / "sort-O2"


def _machine(opt_level=2):
    m = Machine(Options(knobs=Knobs(opt=opt_level)))
    m.load(str(GUEST), [b"sort"], [])
    return m


@pytest.mark.parametrize("opt_level", [0, 2])
def test_translation_throughput(benchmark, opt_level):
    """Translate the guest's entry region from scratch: guest instructions per second."""
    if not GUEST.exists():
        pytest.fail("build the guests first: make guests")

    def translate():
        m = _machine(opt_level)
        t0 = time.perf_counter()
        m.translator.translate_region(m.state.rip)
        return m.translator.stats.insns, time.perf_counter() - t0

    insns, seconds = benchmark.pedantic(translate, rounds=5, iterations=1)
    benchmark.extra_info["guest_insns"] = insns
    benchmark.extra_info["insns_per_second"] = round(insns / seconds)


def test_dispatch_cost(benchmark):
    """Blocks per second through the native dispatcher, for a block that just jumps to itself."""
    m = _machine()
    code = bytes.fromhex("ebfe")            # jmp $  (a one-instruction loop)
    addr = m.image.entry
    m.mem.poke(addr, code)
    m.translator.cache.invalidate_range(addr, addr + 2)
    m.dispatcher.insert(m.translator.lookup(addr))
    n = 2_000_000

    def run():
        m.state.rip = addr
        m.state.ticks = n
        code = m.dispatcher.run(ctypes.addressof(m.state), m.mem.base, m.mem.perm_base, n,
                                hot=NOT_HOT)
        assert code == Exit.BUDGET, code          # ran all n blocks, did not stop early

    benchmark.pedantic(run, rounds=5, iterations=1)
    benchmark.extra_info["ns_per_block"] = round(benchmark.stats.stats.median / n * 1e9, 2)


def test_chained_transfer_cost(benchmark):
    """Nanoseconds per chained transfer: two optimised blocks that jump to each other, each
    looking the other up in the native table and tail-calling it, without the dispatcher."""
    m = _machine()
    a = m.image.entry
    code = bytes.fromhex("eb00") + bytes.fromhex("ebfc")   # a: jmp b; b: jmp a
    m.mem.poke(a, code)
    m.translator.cache.invalidate_range(a, a + len(code))
    blocks = [m.translator.decoder.decode_block(m.mem.fetch, x) for x in (a, a + 2)]
    for t in m.translator.compile_blocks(blocks, hot=True):    # the optimising tier chains
        m.dispatcher.insert(t)
    n = 2_000_000

    def run():
        m.state.rip = a
        m.state.ticks = n              # every chained transfer spends a tick: n transfers
        code = m.dispatcher.run(ctypes.addressof(m.state), m.mem.base, m.mem.perm_base, n,
                                hot=NOT_HOT)
        assert code == Exit.BUDGET, code

    benchmark.pedantic(run, rounds=5, iterations=1)
    benchmark.extra_info["ns_per_transfer"] = round(benchmark.stats.stats.median / n * 1e9, 2)
