"""The native dispatcher: execution stays in host code from block to block.

A direct-mapped lookup table in native memory maps guest addresses to translated functions. The
dispatcher, itself compiled by LLVM, loops: look rip up, call the block, repeat while blocks return
CONTINUE. It returns to Python only for a miss, an exit a block asked for (syscall, helper, fault),
or when its block budget runs out, so Python can notice signals and stop requests::

    d = Dispatcher(codegen)
    d.insert(translation)
    code = d.run(state, mem_base, perm_base, budget=1_000_000)
"""
from __future__ import annotations

import ctypes

from translator.lifter import MODULE_HEADER
from translator.state import Exit, field_index

TABLE_BITS = 16
EMPTY = (1 << 64) - 1


HOT_THRESHOLD = 2000      # runs of a cold block before it is recompiled by the optimising tier
NEVER = 1 << 62           # the count given to entries that must never turn hot


class Entry(ctypes.Structure):
    _fields_ = [("key", ctypes.c_uint64), ("fn", ctypes.c_uint64), ("count", ctypes.c_uint64),
                ("pad", ctypes.c_uint64)]


def _hash_ir(rip: str) -> list[str]:
    return [f"  %h1 = lshr i64 {rip}, {TABLE_BITS}",
            f"  %h2 = xor i64 {rip}, %h1",
            f"  %h = and i64 %h2, {(1 << TABLE_BITS) - 1}"]


def table_index(rip: int) -> int:
    return (rip ^ (rip >> TABLE_BITS)) & ((1 << TABLE_BITS) - 1)


DISPATCH_IR = MODULE_HEADER + f"""
define i32 @dispatch(ptr noalias %st, ptr %mem, ptr %perm, ptr %table, i64 %budget, i64 %hot) {{
entry:
  %rip_p = getelementptr %State, ptr %st, i64 0, i32 {field_index("rip")}
  %hits_p = getelementptr %State, ptr %st, i64 0, i32 {field_index("hits")}
  br label %loop
loop:
  %n = phi i64 [ %budget, %entry ], [ %n1, %next ]
  %rip = load i64, ptr %rip_p
""" + "\n".join(_hash_ir("%rip")) + f"""
  %e = getelementptr {{ i64, ptr, i64, i64 }}, ptr %table, i64 %h
  %key = load i64, ptr %e
  %hit = icmp eq i64 %key, %rip
  br i1 %hit, label %count, label %miss
count:
  %cp = getelementptr {{ i64, ptr, i64, i64 }}, ptr %table, i64 %h, i32 2
  %c = load i64, ptr %cp
  %c1 = add i64 %c, 1
  store i64 %c1, ptr %cp
  %turns_hot = icmp eq i64 %c1, %hot
  br i1 %turns_hot, label %hot_exit, label %run, !prof !0
run:
  %fp = getelementptr {{ i64, ptr, i64, i64 }}, ptr %table, i64 %h, i32 1
  %fn = load ptr, ptr %fp
  %r = call i32 %fn(ptr %st, ptr %mem, ptr %perm)
  %hits = load i64, ptr %hits_p
  %hits1 = add i64 %hits, 1
  store i64 %hits1, ptr %hits_p
  %cont = icmp eq i32 %r, {Exit.CONTINUE}
  br i1 %cont, label %next, label %out
next:
  %n1 = sub i64 %n, 1
  %more = icmp ne i64 %n1, 0
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
                               ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)


class Dispatcher:
    def __init__(self, codegen):
        self.table = (Entry * (1 << TABLE_BITS))()
        for e in self.table:
            e.key = EMPTY
        self.table_addr = ctypes.addressof(self.table)
        addr = codegen.compile(DISPATCH_IR, ["dispatch"])["dispatch"]
        self._fn = DISPATCH_FN(addr)

    def insert(self, t, count: int = 0) -> None:
        """Enter a translation; a cold one starts counting towards HOT_THRESHOLD from `count`."""
        e = self.table[table_index(t.address)]
        e.key = t.address
        e.fn = t.host
        e.count = NEVER if t.hot else count

    def count(self, address: int) -> int:
        """How often the block at `address` ran since it was entered (0 if it is not there)."""
        e = self.table[table_index(address)]
        return e.count if e.key == address else 0

    def remove(self, t) -> None:
        e = self.table[table_index(t.address)]
        if e.key == t.address:
            e.key = EMPTY

    def run(self, state_addr: int, mem_base: int, perm_base: int, budget: int,
            hot: int = HOT_THRESHOLD) -> int:
        return self._fn(state_addr, mem_base, perm_base, self.table_addr, budget, hot)
