"""The native dispatcher: execution stays in host code from block to block.

A direct-mapped lookup table in native memory maps guest addresses to translated functions. The
dispatcher, itself compiled by LLVM, loops: look rip up, call the block, repeat while blocks return
CONTINUE. Translated code mostly does not come back to it: a block that knows where it goes on
(or computed it: ret, indirect jumps) looks its successor up in the same table and tail-calls it
(chaining, translator/lifter.py ``chain``), counting runs the same way. The dispatcher returns to
Python only for a miss, an exit a block asked for (syscall, helper, fault), or when the
state's ``ticks`` run out (blocks it runs and chained transfers spend them), so Python can
notice signals, stop requests and hot regions compiled in the background (whose thread sets
them to 0)::

    d = Dispatcher(codegen)
    d.insert(translation)
    state.ticks = 1_000_000
    code = d.run(state, mem_base, perm_base)
"""
from __future__ import annotations

import ctypes
import os

from translator import SOURCE_DIGEST, VERSION
from translator.runtime_ir import BLOCK_CC, MODULE_HEADER, RUNTIME_DEFS, native_entry
from translator import persist
from translator.persist import module_key
from translator.state import TABLE_BITS, TABLE_ENTRY, Exit, field_index, table_index
from translator.state import table_index_ir

EMPTY = (1 << 64) - 1


# Runs of a cold block before it is recompiled by the optimising tier. A hot region costs
# 20-40 ms of -O2; 2,000 runs promoted code that never repaid it (sort compiled 156 blocks hot
# instead of 126, 0.4 s more, and ran no faster).
HOT_THRESHOLD = 20000
# An interpreted block (knob baseline=interp) is compiled by the cold tier after the knob
# `warmup`'s runs: its entry starts counting at HOT_THRESHOLD - warmup, so that it leaves with
# Exit.HOT after that many runs like a cold block after HOT_THRESHOLD (``count`` takes the
# offset off again). warmup=auto: WARMUP_KEPT runs when the persistent cache keeps the cold
# code; in a run that keeps nothing, never (``warms`` False): a block that has run
# HOT_THRESHOLD times goes from the interpreter to the optimising tier, and is interpreted
# while its region compiles in the background. (Compiled cold one run before it turned hot,
# as until the eighteenth round, its code ran no faster than the interpreter -- crc32's loop
# about 25 ns a trip in both -- and the cold module cost the main thread: 21 ms for crc32's
# fill loop; sha256 --no-cache 1.87 -> 1.72 s without them.)
WARMUP_KEPT = 64
NEVER = 1 << 62           # the count given to entries that must never turn hot
HELD = 1 << 61            # ... and to blocks of a region being compiled (Dispatcher.hold)
PERF_MAP = "JITBT_PERF_MAP"   # set to 1: write /tmp/perf-PID.map for perf (write_perf_map)


class Entry(ctypes.Structure):
    _fields_ = [("key", ctypes.c_uint64), ("fn", ctypes.c_uint64), ("count", ctypes.c_uint64),
                ("data", ctypes.c_uint64)]


def _hash_ir(rip: str) -> list[str]:
    lines = []

    def emit(text):
        lines.append(f"  %h{len(lines) + 1} = {text}")
        return f"%h{len(lines)}"
    h = table_index_ir(emit, rip)
    return lines + [f"  %h = or i64 {h}, 0"]


DISPATCH_IR = MODULE_HEADER + RUNTIME_DEFS + f"""
define i32 @dispatch(ptr noalias %st, ptr %mem, ptr %perm, ptr %table, i64 %hot) {{
entry:
{native_entry("%st")}
  %rip_p = getelementptr %State, ptr %st, i64 0, i32 {field_index("rip")}
  %hits_p = getelementptr %State, ptr %st, i64 0, i32 {field_index("hits")}
  %table_p = getelementptr %State, ptr %st, i64 0, i32 {field_index("table")}
  store ptr %table, ptr %table_p
  %hot_p = getelementptr %State, ptr %st, i64 0, i32 {field_index("hot")}
  store i64 %hot, ptr %hot_p
  %ticks_p = getelementptr %State, ptr %st, i64 0, i32 {field_index("ticks")}
  br label %loop
loop:
  %rip = load i64, ptr %rip_p
""" + "\n".join(_hash_ir("%rip")) + f"""
  %e = getelementptr {TABLE_ENTRY}, ptr %table, i64 %h
  %key = load i64, ptr %e
  %hit = icmp eq i64 %key, %rip
  br i1 %hit, label %count, label %miss
count:
  %cp = getelementptr {TABLE_ENTRY}, ptr %table, i64 %h, i32 2
  %c = load i64, ptr %cp
  %c1 = add i64 %c, 1
  store i64 %c1, ptr %cp
  %turns_hot = icmp eq i64 %c1, %hot
  br i1 %turns_hot, label %hot_exit, label %run, !prof !0
run:
  %fp = getelementptr {TABLE_ENTRY}, ptr %table, i64 %h, i32 1
  %fn = load ptr, ptr %fp
  %dp = getelementptr {TABLE_ENTRY}, ptr %table, i64 %h, i32 3
  %data = load ptr, ptr %dp
  %r = call {BLOCK_CC} i32 %fn(ptr %st, ptr %mem, ptr %perm, ptr %data)
  %hits = load i64, ptr %hits_p
  %hits1 = add i64 %hits, 1
  store i64 %hits1, ptr %hits_p
  %cont = icmp eq i32 %r, {Exit.CONTINUE}
  br i1 %cont, label %next, label %out
next:
  %n = load i64, ptr %ticks_p
  %n1 = sub i64 %n, 1
  store i64 %n1, ptr %ticks_p
  %more = icmp sgt i64 %n1, 0
  br i1 %more, label %loop, label %spent
out:
  ret i32 %r
miss:
  ret i32 {Exit.MISS}
hot_exit:
  ret i32 {Exit.HOT}
spent:
  ret i32 {Exit.BUDGET}
}}
!0 = !{{!"branch_weights", i32 1, i32 100000}}
"""

DISPATCH_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_void_p, ctypes.c_uint64)


class Dispatcher:
    def __init__(self, codegen, warmup: int = 0, kept: bool = True, tiered: bool = True):
        """`warmup`: the knob (0: auto); `kept`: does a persistent cache keep compiled code?
        `tiered`: is there an optimising tier for hot code to go to?"""
        self.warms = bool(warmup) or kept or not tiered    # interpreted blocks turn cold first?
        if not warmup:
            warmup = WARMUP_KEPT if kept else HOT_THRESHOLD - 1
        self.interp_start = HOT_THRESHOLD - min(warmup, HOT_THRESHOLD - 1)
        # Interpreted blocks that warmed up while their cold code is compiled for the store on
        # a thread (Translator.warm_up): they stay interpreted and count on towards
        # HOT_THRESHOLD from their runs, as a cold block would.
        self.counting: set[int] = set()
        self.table = (Entry * (1 << TABLE_BITS))()
        self.table_addr = ctypes.addressof(self.table)
        ctypes.memset(self.table_addr, 0xFF, ctypes.sizeof(self.table))   # every key EMPTY
        # Through the caches like any module: a warm start loads it instead of compiling it.
        key = module_key(["dispatch", DISPATCH_IR], VERSION, (SOURCE_DIGEST,))
        addr = codegen.compile_keyed(key, lambda: DISPATCH_IR, ["dispatch"],
                                     persist.RUNTIME)["dispatch"]
        self._fn = DISPATCH_FN(addr)
        self.perf_map: dict | None = {addr: "jitbt_dispatch"} if os.environ.get(PERF_MAP) else None

    def name_handlers(self, handlers: dict) -> None:
        """Name the interpreter's handlers ({shape key: address}) in the perf map: every
        interpreted block shares them, so samples there are the interpreter's, by shape."""
        if self.perf_map is not None:
            for key, addr in handlers.items():
                self.perf_map[addr] = f"jitbt_handler[{key}]"

    def write_perf_map(self) -> None:
        """With JITBT_PERF_MAP=1 in the environment: name every translation that was entered in
        /tmp/perf-PID.map, where `perf report` looks for JIT code (a function's size is taken as
        the distance to the next one, at most 64 KiB)."""
        if not self.perf_map:
            return
        addrs = sorted(self.perf_map)
        with open(f"/tmp/perf-{os.getpid()}.map", "w") as f:
            for a, b in zip(addrs, addrs[1:] + [addrs[-1] + 4096]):
                f.write(f"{a:x} {min(b - a, 1 << 16):x} {self.perf_map[a]}\n")

    def insert(self, t, count: int = 0, warmed: bool = False) -> None:
        """Enter a translation; a cold one starts counting towards HOT_THRESHOLD from `count`,
        an interpreted one towards the knob `warmup`'s runs (`warmed`: it has warmed up and
        stays interpreted, so from then on it counts as a cold one would)."""
        if self.perf_map is not None and not t.data:   # (handlers are named by name_handlers)
            self.perf_map[t.host] = f"guest_{t.address:x}_{'hot' if t.hot else 'cold'}"
        if warmed and t.data:
            self.counting.add(t.address)
        elif not t.data:
            self.counting.discard(t.address)
        e = self.table[table_index(t.address)]
        e.key = t.address
        e.fn = t.host
        e.data = t.data
        e.count = NEVER if t.hot else count + self._start(e)

    def _start(self, e) -> int:
        """Where the entry's count starts: interpreted blocks that have not warmed up count
        from interp_start, the others from 0."""
        return self.interp_start if e.data and e.key not in self.counting else 0

    def hold(self, address: int) -> None:
        """A block of a region being compiled in the background: it must not turn hot on its
        own meanwhile (its count jumps past the threshold, and still says it ran)."""
        e = self.table[table_index(address)]
        if e.key == address and e.count < HELD:
            e.count = HELD

    def release(self, address: int) -> None:
        """The region holding the block is in: it counts afresh (entered from elsewhere often
        enough, it heads a region of its own)."""
        e = self.table[table_index(address)]
        if e.key == address and HELD <= e.count < NEVER:
            e.count = self._start(e)

    def recount(self, address: int) -> None:
        """A block that turned hot but heads no region (yet): it counts afresh."""
        e = self.table[table_index(address)]
        if e.key == address and e.count < HELD:
            e.count = self._start(e)

    def count(self, address: int) -> int:
        """How often the block at `address` ran since it was entered (0 if it is not there)."""
        e = self.table[table_index(address)]
        if e.key != address:
            return 0
        if e.count < HELD:
            return max(0, e.count - self._start(e))
        return e.count

    def remove(self, t) -> None:
        self.counting.discard(t.address)
        e = self.table[table_index(t.address)]
        if e.key == t.address:
            e.key = EMPTY

    def run(self, state_addr: int, mem_base: int, perm_base: int,
            hot: int = HOT_THRESHOLD) -> int:
        return self._fn(state_addr, mem_base, perm_base, self.table_addr, hot)
