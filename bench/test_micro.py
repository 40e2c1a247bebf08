"""Micro-benchmarks (pytest-benchmark): translation throughput and native dispatch cost.

    .venv/bin/python -m pytest bench/test_micro.py --benchmark-only

These measure; they never fail on speed. The printed extra_info gives guest instructions per
second for translation by each tier (the interpreter's records, the cold tier's -O0 modules,
the optimising tier's -O2 regions), nanoseconds per block through the dispatcher loop, per
chained transfer between optimised translations, and per interpreted instruction. The
interpreter's handler library is taken from the cache folder (`make prepare`); shapes it lacks
are built before timing.
"""
from __future__ import annotations

import ctypes
import time
from pathlib import Path

import pytest

from runtime.machine import Machine, Options
from translator import _shape
from translator.knobs import Knobs
from translator.state import Exit

NOT_HOT = 1 << 63          # a hot threshold never reached: nothing stops to be promoted

ROOT = Path(__file__).resolve().parent.parent
GUEST = ROOT / "guests" / "build" / "sort-O2"
LIBC_GUEST = ROOT / "guests" / "build" / "numeric-glibc"    # glibc's start-up to translate


def _machine(guest=GUEST):
    m = Machine(Options(knobs=Knobs()))
    m.load(str(guest), [guest.name.encode()], [])
    return m


BLOCKS = 256               # blocks reachable from the entry by direct branches, translated


@pytest.mark.parametrize("tier", ["interp", "cold", "hot"])
def test_translation_throughput(benchmark, tier):
    """Decode the BLOCKS blocks reachable from the guest's entry and translate them from
    scratch: as interpreter records, as cold modules of 16 blocks (-O0), or as optimised
    regions of 16 blocks (-O2). Guest instructions per second."""
    from translator.interp import interpret
    if not LIBC_GUEST.exists():
        pytest.fail("build the guests first: make guests")
    m = _machine(LIBC_GUEST)
    lib = m.translator.handlers
    lib.load()
    for b in m.translator.decode_region(m.state.rip, BLOCKS, include=lambda a: True):
        if interpret(lib, b) is None:
            lib.build()

    def translate():
        m = _machine(LIBC_GUEST)
        tr = m.translator
        t0 = time.perf_counter()
        blocks = tr.decode_region(m.state.rip, BLOCKS, include=lambda a: True)
        if tier == "interp":
            out = [interpret(lib, b) for b in blocks]
            assert None not in out
        for i in range(0, len(blocks), 16) if tier != "interp" else ():
            part = blocks[i:i + 16]
            if tier == "cold":
                tr._compile_cold([_shape(b) for b in part], [len(b.insns) for b in part], part)
            else:
                tr.compile_region(part)
        return sum(len(b.insns) for b in blocks), time.perf_counter() - t0

    insns, seconds = benchmark.pedantic(translate, rounds=5, iterations=1)
    benchmark.extra_info["guest_insns"] = insns
    benchmark.extra_info["insns_per_second"] = round(insns / seconds)


def test_interpreted_instruction_cost(benchmark):
    """Nanoseconds per guest instruction run by the interpreter: a three-instruction loop
    (add, dec, jnz) that never turns hot."""
    m = _machine()
    addr = m.image.entry
    m.mem.poke(addr, bytes.fromhex("4883c001" "48ffc9" "75f7"))   # add rax,1; dec rcx; jnz
    m.translator.cache.invalidate_range(addr, addr + 9)
    t = m.translator.lookup(addr)
    assert t.interpreted
    m.dispatcher.insert(t)
    n = 1_000_000

    def run():
        m.state.rip = addr
        m.state.gpr[1] = 1 << 40         # rcx: the loop runs until the budget is spent
        m.state.ticks = n
        code = m.dispatcher.run(ctypes.addressof(m.state), m.mem.base, m.mem.perm_base, n,
                                hot=NOT_HOT)
        assert code == Exit.BUDGET, code

    benchmark.pedantic(run, rounds=5, iterations=1)
    benchmark.extra_info["ns_per_insn"] = round(benchmark.stats.stats.median / (3 * n) * 1e9, 2)


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
