"""Hot regions compiled on a second thread (knob background, translator/background.py).

- A region sent to the background thread comes back as a hot translation of the same blocks,
  and the blocks are held (kept from turning hot on their own) until it is in.
- A region whose guest bytes change while it compiles is dropped, never entered.
- A fork while a region compiles: the child gets a worker of its own and the region still
  arrives there (the parent's thread did not come along).
- Ending the run: a region still compiling is waited for (and stored) when a persistent store
  keeps it, and not waited for without one.
- End to end: a guest's output is native's with background on and off, and --stats shows the
  work done on the thread.
- A loop nest whose inner loop turned hot first is headed at that inner loop, whatever the
  timing; a queued inner region is taken into the outer loop's region instead.
- The worker takes first a queued region whose code still runs over one whose loop the guest
  has left.
"""
from __future__ import annotations

import os
import re
import threading

from conftest import BUILD, clean_env, run_jitbt, run_native
from runtime.memory import GuestMemory
from translator import Translator
from translator.background import Background
from translator.conformance import assemble
from translator.knobs import Knobs
from translator.persist import ObjectStore
from translator.state import PERM_R, PERM_X

BASE = 0x400000
LOOP = "loop: add rax, rbx; imul rbx, rax; dec rcx; jnz loop; mov rdx, rax; ret"


def _sent(knobs: Knobs = Knobs(), store=None):
    """A translator whose hot loop at BASE has been sent to the background thread."""
    mem = GuestMemory()
    mem.map(BASE, 0x1000, PERM_R | PERM_X)
    mem.poke(BASE, assemble(LOOP, BASE))
    tr = Translator(mem.fetch, knobs, store=store)
    held = {}
    tr.on_hold = lambda a, h: held.__setitem__(a, h)
    tr.lookup(BASE)                                  # the cold translation, as a run makes it
    assert tr.promote(BASE, lambda a: True) == []   # sent, not waited for
    assert tr.pending and held and all(held.values())
    return mem, tr, held


def test_a_region_compiled_in_the_background_comes_back_hot():
    mem, tr, held = _sent()
    tr.background.wait()
    (t,) = tr.finished()
    assert t.hot and t.address == BASE and tr.cache.get(BASE) is t
    assert set(held) == {s for s, _ in t.extents()} and not any(held.values())
    assert not tr.pending and tr.stats.regions == 1
    # The same blocks compiled while the guest waits (background=off) make the same region.
    sync = Translator(mem.fetch, Knobs(background="off"))
    sync.lookup(BASE)
    (u,) = sync.promote(BASE, lambda a: True)
    assert u.extents() == t.extents() and u.ninsns == t.ninsns and u.name == t.name
    tr.close()


def test_a_region_whose_code_changed_while_compiling_is_dropped():
    mem, tr, held = _sent()
    mem.poke(BASE, assemble("nop", BASE))             # the loop's first instruction is gone
    tr.background.wait()
    assert tr.finished() == []
    assert not tr.cache.get(BASE).hot                 # the cold translation stays (SMC drops it)
    assert not any(held.values())                     # its blocks count again
    assert tr.stats.regions_dropped == 1
    tr.close()


def test_a_fork_while_a_region_compiles_leaves_the_child_a_worker():
    mem, tr, _ = _sent()
    pid = os.fork()                  # waits for the job in flight, if any, before forking
    if pid == 0:
        code = 1
        try:
            tr.background.wait()
            (t,) = tr.finished()
            code = 0 if t.hot and t.address == BASE else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    tr.background.wait()
    assert len(tr.finished()) == 1
    tr.close()


def test_the_end_of_a_run_waits_for_a_region_in_flight_only_when_a_store_keeps_it(
        tmp_path, monkeypatch):
    started, go = threading.Event(), threading.Event()
    compile_ = Background._compile

    def held(self, *args):          # the worker's compile, held until the test lets it go on
        started.set()
        go.wait()
        return compile_(self, *args)
    monkeypatch.setattr(Background, "_compile", held)
    try:
        # No store: the region would be thrown away, so closing does not wait for it.
        _, tr, _ = _sent()
        assert started.wait(10)
        closer = threading.Thread(target=tr.close)
        closer.start()
        closer.join(10)
        assert not closer.is_alive()
        go.set()
        # A store: closing waits for the job in flight and keeps its object code.
        started.clear()
        go.clear()
        store = ObjectStore(tmp_path)
        _, tr, _ = _sent(store=store)
        (key,) = tr.pending
        assert started.wait(10)
        closer = threading.Thread(target=tr.close)
        closer.start()
        closer.join(0.2)
        assert closer.is_alive()            # waiting for the compile in flight
        go.set()
        closer.join(60)
        assert not closer.is_alive() and store.has(key)
    finally:
        go.set()


def test_guest_output_is_native_with_background_compiles_on_and_off():
    guest = BUILD / "statemachine-O2"
    native = run_native(guest, env=clean_env())
    for setting in ("on", "off"):
        r = run_jitbt("run", "--no-cache", "--stats", "--set", f"background={setting}", guest,
                      env=clean_env())
        assert (r.returncode, r.stdout) == (native.returncode, native.stdout), setting
        line = re.search(rb"time compiling on the background thread +[\d.]+ s \((\d+) regions\)",
                         r.stderr)
        regions = int(re.search(rb"hot regions \(optimising tier\) +(\d+)", r.stderr)[1])
        if setting == "on":
            assert line and int(line[1]) >= regions
        else:
            assert line is None and regions >= 1


NEST = """outer: mov rdx, 5
call inner
dec rcx
jnz outer
ret
inner: add rax, rdx
dec rdx
jnz inner
ret"""


def _finish_all(tr) -> None:
    while tr.pending:
        tr.background.wait()
        tr.finished()


def test_a_region_formed_while_its_callee_compiles_takes_the_callee_in(tmp_path):
    """The callee's loop turns hot first and is sent to the background thread; the caller's
    loop turns hot while it compiles and takes the callee's blocks in at once (it neither
    waits nor is formed again once the callee is in): the same region the caller forms when
    nothing compiles in the background."""
    from translator.persist import ObjectStore
    mem = GuestMemory()
    mem.map(BASE, 0x1000, PERM_R | PERM_X)
    code = assemble(NEST, BASE)
    mem.poke(BASE, code)
    inner = BASE + code.index(bytes.fromhex("4801d0"))           # add rax, rdx
    store = ObjectStore(tmp_path)
    tr = Translator(mem.fetch, Knobs(), store=store)
    for a in (BASE, inner):
        tr.lookup(a)
    for a in [b.start for b in tr.decode_region(BASE, 16, include=lambda a: True)]:
        tr.lookup(a)
    ran = lambda a: True
    assert tr.promote(inner, ran) == [] and inner in tr.pending_heads
    assert tr.promote(BASE, ran) == [] and BASE in tr.pending_heads
    outer = next(b for _, b in tr.pending.values() if b[0].start == BASE)
    assert inner in {b.start for b in outer}
    # The shape of a region is stored once its code is (a warm run can load what it names).
    assert tr._stored_shape("region shape", BASE, list) is None
    _finish_all(tr)
    t = tr.cache.get(BASE)
    assert t.hot and inner in {s for s, _ in t.ranges}
    assert tr.stats.regions_grown == 0
    assert tr._stored_shape("region shape", BASE, list) == [s for s, _ in t.ranges]
    tr.close()

    sync = Translator(mem.fetch, Knobs(background="off"))
    for a in [b.start for b in sync.decode_region(BASE, 16, include=lambda a: True)]:
        sync.lookup(a)
    sync.promote(inner, ran)
    u, *_ = sync.promote(BASE, ran)        # (then its side entries: knob entries)
    assert u.address == BASE
    assert sorted(u.ranges) == sorted(t.ranges)


def test_a_queued_region_that_a_later_one_holds_is_not_compiled():
    """The callee's loop is queued but the thread has not started it when the caller's loop
    turns hot and takes the callee's blocks in: the callee's job is dropped, and only the
    caller's region is compiled. Every block is held until that region is in, then released.
    (One the thread has started is compiled as before: the test above.)"""
    from translator.background import Background
    mem = GuestMemory()
    mem.map(BASE, 0x1000, PERM_R | PERM_X)
    code = assemble(NEST, BASE)
    mem.poke(BASE, code)
    inner = BASE + code.index(bytes.fromhex("4801d0"))           # add rax, rdx
    tr = Translator(mem.fetch, Knobs())
    held = {}
    tr.on_hold = lambda a, h: held.__setitem__(a, h)
    tr.background = bg = Background(tr.codegen.opt_level)
    bg._thread = "not started"          # (jobs queue up until the test starts the thread)
    for a in [b.start for b in tr.decode_region(BASE, 16, include=lambda a: True)]:
        tr.lookup(a)
    ran = lambda a: True
    assert tr.promote(inner, ran) == [] and inner in tr.pending_heads
    assert tr.promote(BASE, ran) == []
    assert tr.pending_heads == {BASE} and len(bg._todo) == 1
    assert tr.stats.regions_superseded == 1
    assert held and all(held.values())
    bg._thread = None
    bg._start()
    _finish_all(tr)
    assert bg.jobs == 1 and tr.stats.regions == 1
    t = tr.cache.get(BASE)
    assert t.hot and inner in {s for s, _ in t.ranges}
    assert not tr.cache.get(inner).hot       # (it heads a region once it turns hot again)
    assert not any(held.values())
    tr.close()


# A loop nest in one function: the outer loop's first block falls into the inner loop (its
# decoding runs on through the inner loop's first trip, as gcc's matmul's middle loop does),
# and the outer loop's latch closes it.
LOOP_NEST = """outer: mov rdx, 5
inner: add rax, rdx
dec rdx
jnz inner
dec rcx
jnz outer
ret"""


def _nest(knobs: Knobs):
    mem = GuestMemory()
    mem.map(BASE, 0x1000, PERM_R | PERM_X)
    code = assemble(LOOP_NEST, BASE)
    mem.poke(BASE, code)
    inner = BASE + code.index(bytes.fromhex("4801d0"))           # add rax, rdx
    latch = BASE + code.index(bytes.fromhex("48ffc9"))           # dec rcx
    tr = Translator(mem.fetch, knobs)
    held = {}
    tr.on_hold = lambda a, h: held.__setitem__(a, h)
    for a in [b.start for b in tr.decode_region(BASE, 16, include=lambda a: True)]:
        tr.lookup(a)
    return tr, inner, latch, held


def test_a_loop_nest_is_headed_at_its_inner_loop_when_that_turned_hot_first():
    """The inner loop turns hot first (only its block has run often enough) and its region
    is being compiled when the outer loop's first block turns hot: that block waits (held)
    instead of heading a region of the whole nest, and once the inner loop's region is in,
    the outer loop's latch (one of its exits) turning hot grows it: the nest headed at the
    inner loop, as when nothing compiles in the background (there the outer block's region
    is headed at the inner loop it holds). Headed at the outer loop, LLVM's code for gcc's
    matmul nest ran 20% slower (README, twenty-first round), and which of the two a run got
    depended on timing."""
    tr, inner, latch, held = _nest(Knobs())
    assert tr.promote(inner, lambda a: a == inner) == [] and inner in tr.pending_heads
    tr.background.wait()                # compiled, not yet taken: in flight for the runtime
    ran = lambda a: True
    assert tr.promote(BASE, ran) == [] and BASE not in tr.pending_heads
    assert held[BASE], "the outer loop's block headed a region of its own"
    _finish_all(tr)
    assert not held[BASE]               # (released: it counts afresh)
    assert tr.promote(latch, ran) == []
    _finish_all(tr)
    t = tr.cache.get(inner)
    assert t.hot and {BASE, inner, latch} <= {s for s, _ in t.ranges}
    assert t.ranges[0][0] == inner and not tr.cache.get(BASE).hot
    tr.close()

    sync, *_ = _nest(Knobs(background="off"))
    (one,) = sync.promote(inner, lambda a: a == inner)
    assert [s for s, _ in one.ranges] == [inner]
    u, *_ = sync.promote(BASE, ran)
    assert u.address == inner and sorted(u.ranges) == sorted(t.ranges)


def test_a_loop_nest_whose_inner_region_is_still_queued_is_headed_there():
    """The inner loop's region is queued but not started when the outer loop's block turns
    hot: the outer block's region takes the inner loop in, headed at the inner loop as when
    nothing compiles in the background, and the queued job is dropped, as for a callee
    (test_a_queued_region_that_a_later_one_holds_is_not_compiled): waiting for a job that has
    not started would only delay both. (It was headed at the outer block: gcc's matmul nest
    then ran 2.70 s warm against 2.27 s, medians over 8 fresh caches each, README,
    twenty-seventh round.)"""
    tr, inner, latch, held = _nest(Knobs())
    tr.background = bg = Background(tr.codegen.opt_level, tr.on_compiled)
    bg._thread = "not started"          # (jobs queue up until the test starts the thread)
    assert tr.promote(inner, lambda a: a == inner) == [] and inner in tr.pending_heads
    assert tr.promote(BASE, lambda a: True) == []
    assert tr.pending_heads == {inner} and tr.stats.regions_superseded == 1
    assert len(bg._todo) == 1
    bg._thread = None
    bg._start()
    _finish_all(tr)
    assert bg.jobs == 1 and tr.stats.regions == 1
    t = tr.cache.get(inner)
    assert t.hot and t.ranges[0][0] == inner and BASE in {s for s, _ in t.ranges}
    assert not tr.cache.get(BASE).hot
    tr.close()

    sync, *_ = _nest(Knobs(background="off"))
    sync.promote(inner, lambda a: a == inner)
    u, *_ = sync.promote(BASE, lambda a: True)
    assert u.address == inner and sorted(u.ranges) == sorted(t.ranges)


class _Recording(Background):
    """A worker that records the jobs it takes instead of compiling them, the first one held
    until `go` is set (so that the others queue behind it)."""

    def __init__(self, runs):
        super().__init__(0, runs=runs)
        self.go, self.started, self.order = threading.Event(), threading.Event(), []

    def _compile(self, text, tm, pb):
        if not self.order:
            self.started.set()
            self.go.wait(10)
        self.order.append(text)
        return b""


def test_queued_regions_whose_code_still_runs_are_taken_first():
    """A job queued behind another goes first when its blocks have run since the last job was
    submitted and the other's have not (the guest left that loop: crc32's fill loop); among
    jobs that still run, or when none does, first in, first out."""
    counts = {a: 0 for a in range(0x10, 0x80, 0x10)}
    bg = _Recording(runs=counts.__getitem__)
    bg.submit("first", "first", (0x10,))
    assert bg.started.wait(10)                     # (the worker has taken it)
    bg.submit("left", "left", (0x20, 0x30))        # a loop the guest then leaves
    counts[0x30] += 5
    bg.submit("running", "running", (0x40,))
    bg.submit("also", "also", (0x50,))
    counts[0x40] += 1                              # still runs; "left" ran before, not since
    counts[0x50] += 1
    bg.go.set()
    bg.wait()
    assert bg.order == ["first", "running", "also", "left"]
    # Without counts (or when nothing ran since), in the order they came.
    fifo = _Recording(runs=None)
    fifo.submit("first", "first", (0x60,))
    assert fifo.started.wait(10)
    for name in ("a", "b"):
        fifo.submit(name, name, (0x60,))
    fifo.go.set()
    fifo.wait()
    assert fifo.order == ["first", "a", "b"]
    bg.close()
    fifo.close()
