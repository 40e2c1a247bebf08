"""A small builder of LLVM IR text.

Translation speed matters (a cold run translates every block it executes), and building IR as text
with f-strings is several times faster than llvmlite.ir's object graph. The builder only numbers
temporaries and labels, collects lines and the intrinsics a function uses::

    b = IRBuilder()
    x = b.emit("add i64 %a, 1")        # -> "%t1"
    b.label(b.new_label("exit"))
"""
from __future__ import annotations

from .state import Exit, field_index


def ty(bits: int) -> str:
    return f"i{bits}"


class IRValue(str):
    """The name of an i64 IR value standing for a number known only when the code runs: the
    interpreter's handlers (translator/interp.py) read an instruction's address and operands
    from its record. It goes into IR text like any value name, but refuses Python arithmetic
    and tests, so a semantic that decides something from such a number in Python fails loudly
    (TypeError) instead of deciding from the text of a name; masking with all 64 bits, which
    changes nothing, is allowed."""
    __slots__ = ()

    def __and__(self, mask):
        if mask == (1 << 64) - 1:
            return self
        raise TypeError(f"{self}: a run-time value, not a number known when lifting")

    __rand__ = __and__

    def _refuse(self, *args):
        raise TypeError(f"{self}: a run-time value, not a number known when lifting")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __mod__ = __rmod__ = _refuse
    __or__ = __ror__ = __xor__ = __rxor__ = __lshift__ = __rlshift__ = _refuse
    __rshift__ = __rrshift__ = __neg__ = __invert__ = __index__ = __int__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = __bool__ = _refuse


def const(value: int, bits: int) -> str:
    """An integer constant of the given width, written in signed form as LLVM expects (an
    IRValue, already an i64, stands for itself at 64 bits)."""
    if isinstance(value, IRValue):
        if bits != 64:
            raise TypeError(f"{value}: a run-time i64, wanted as i{bits}")
        return value
    value &= (1 << bits) - 1
    if bits > 1 and value >> (bits - 1):
        value -= 1 << bits
    return str(value)


INTRINSICS = {
    "ctpop8": "declare i8 @llvm.ctpop.i8(i8)",
    **{f"bswap{n}": f"declare i{n} @llvm.bswap.i{n}(i{n})" for n in (16, 32, 64)},
    **{f"cttz{n}": f"declare i{n} @llvm.cttz.i{n}(i{n}, i1)" for n in (8, 16, 32, 64)},
    **{f"ctlz{n}": f"declare i{n} @llvm.ctlz.i{n}(i{n}, i1)" for n in (8, 16, 32, 64)},
    **{f"fshl{n}": f"declare i{n} @llvm.fshl.i{n}(i{n}, i{n}, i{n})" for n in (8, 16, 32, 64)},
    **{f"fshr{n}": f"declare i{n} @llvm.fshr.i{n}(i{n}, i{n}, i{n})" for n in (8, 16, 32, 64)},
}


SYNC = "  ;sync"


class IRBuilder:
    def __init__(self, prefix: str = "t", one_ret: bool = False):
        self.lines: list[str] = []
        # one_ret: every `ret i32 v` becomes a branch to one shared return block. LLVM's fast
        # instruction selector (-O0) cannot lower a return in the translated functions' calling
        # convention, and hands each block that ends in one to the slow selector.
        self.rets: list[tuple[str, str]] | None = [] if one_ret else None
        self.faults: list[tuple[str, str, str, str]] = []    # the same for calls of @fault
        # With sync, the faults that keep the same flags share one exit block, which writes
        # the state back once: written at each fault, the write-backs were over a third of
        # the instructions of a large region, and of the backend's time. share_faults names
        # the faults' scope: the whole function (None), or, in a loop, one guest block (its
        # address), since there the values of every local flowing into one block of the
        # function made the loops of matmul and nbody 5-8% slower.
        self.share_faults: int | None = None
        self.sync_faults: dict[tuple, list[tuple[str, str, str, str]]] = {}
        self.current = "entry"
        # sync: mark each exit (a ret, or the musttail call before one) with SYNC, where the
        # lifter writes back the guest state it keeps in locals (FunctionLifter.sync_exits).
        self.sync = False
        self.leaving = False       # the state is written back already: exits need no SYNC
        # keep: at a fault, the flags to write back (those the code after the faulting point
        # reads before overwriting); None: every one. Written on the SYNC line (sync_exits).
        self.keep: frozenset | None = None
        self.n = 0
        self.prefix = prefix
        self.intrinsics: set[str] = set()
        self.terminated = False
        self.fault_ret = False     # fault_return() used
        self.blocks = 0            # labels so far: which IR basic block lines go into
        # track: values known as an offset from one base value, {value: offset}; emit adds
        # `add/sub i64 v, c` of a tracked v (FunctionLifter's stack offsets). None: off.
        self.track: dict[str, int] | None = None

    def emit(self, text: str) -> str:
        """Emit an instruction that produces a value; returns the value's name."""
        self.n += 1
        name = f"%{self.prefix}{self.n}"
        if self.track is not None and text.startswith(("add i64 %", "sub i64 %")):
            x, _, c = text[8:].partition(", ")
            d = self.track.get(x)
            if d is not None and c.lstrip("-").isdigit():
                self.track[name] = d + int(c) if text[0] == "a" else d - int(c)
        if self.sync and not self.leaving and text.startswith("musttail call"):
            self.lines.append(SYNC)
        self.lines.append(f"  {name} = {text}")
        return name

    def stmt(self, text: str) -> None:
        """Emit an instruction without a result (store, br, ret, call void)."""
        if self.rets is not None and text.startswith("ret i32 "):
            self.rets.append((text[8:], self.current))
            text = "br label %ret.out"
        elif self.sync and not self.leaving and text.startswith("ret ") \
                and "musttail call" not in self.lines[-1]:
            self.lines.append(SYNC)
        self.lines.append("  " + text)
        if text.startswith(("br ", "ret ", "unreachable", "switch ")):
            self.terminated = True

    def fault(self, rip: str, addr: str, signal: int) -> None:
        """End the block: the guest faults with `signal` at `rip` (address `addr`)."""
        line = self.sync_line(self.keep if self.sync else None)
        if self.sync:
            key = (line, self.share_faults)
            self.sync_faults.setdefault(key, []).append((rip, addr, str(signal), self.current))
            self.stmt(f"br label %fault.sync{list(self.sync_faults).index(key)}")
        elif self.rets is None:
            r = self.emit(f"call i32 @fault(ptr %st, i64 {rip}, i64 {addr}, i32 {signal})")
            self.lines.append(f"  ret i32 {r}")
            self.terminated = True
        else:
            self.faults.append((rip, addr, str(signal), self.current))
            self.stmt("br label %fault.out")

    def fault_return(self) -> str:
        """The label of the function's one block returning Exit.FAULT with the state as it
        is (the cold tier's memory check has written the fault into it)."""
        self.fault_ret = True
        return "fault.ret"

    @staticmethod
    def sync_line(keep: frozenset | None) -> str:
        """The SYNC line of a write-back that keeps only the flags `keep` (None: every one)."""
        return SYNC if keep is None else f"{SYNC} flags {' '.join(sorted(keep))}".rstrip()

    def leave(self, keep: frozenset | None = None) -> None:
        """Write the state back here (of the flags, those in `keep`; None: every one): every
        path from here leaves the function (until ``leaving`` is cleared), so its exits need
        not each do it."""
        if self.sync:
            self.lines.append(self.sync_line(keep))
        self.leaving = True

    def join(self, name: str, sites: list[tuple[str, str]]) -> str:
        """Start block `name`, entered from the blocks of `sites` ((i64 value, block label)):
        the phi of their values."""
        self.label(name)
        return self.emit("phi i64 " + ", ".join(f"[ {v}, %{label} ]" for v, label in sites))

    def new_label(self, hint: str = "L") -> str:
        self.n += 1
        return f"{hint}{self.n}"

    def label(self, name: str) -> None:
        if not self.terminated:
            self.lines.append(f"  br label %{name}")
        self.lines.append(f"{name}:")
        self.current = name
        self.blocks += 1
        self.terminated = False

    def use(self, intrinsic: str) -> None:
        self.intrinsics.add(intrinsic)

    def _phis(self, sites) -> list[tuple[str, str]]:
        """(type, value) of phis of the rip, address and signal of the faults `sites`."""
        out = []
        for i, ty in enumerate(("i64", "i64", "i32")):
            phi = ", ".join(f"[ {f[i]}, %{f[3]} ]" for f in sites)
            out.append((ty, self.emit(f"phi {ty} {phi}")))
        return out

    def text(self) -> str:
        for n, ((line, _), sites) in enumerate(self.sync_faults.items()):
            self.label(f"fault.sync{n}")
            (_, rip), (_, addr), (_, sig) = self._phis(sites)
            self.lines.append(line)
            r = self.emit(f"call i32 @fault(ptr %st, i64 {rip}, i64 {addr}, i32 {sig})")
            self.lines.append(f"  ret i32 {r}")
            self.terminated = True
        self.sync_faults = {}
        if self.faults:
            self.label("fault.out")
            args = self._phis(self.faults)
            # What @fault does, written out: a call by name would go to the slow selector.
            for (ty, value), field in zip(args, ("rip", "fault_addr", "fault_sig")):
                p = self.emit(f"getelementptr %State, ptr %st, i64 0, i32 {field_index(field)}")
                self.stmt(f"store {ty} {value}, ptr {p}")
            self.stmt(f"ret i32 {Exit.FAULT}")
            self.faults = []
        if self.fault_ret:
            self.label("fault.ret")
            self.stmt(f"ret i32 {Exit.FAULT}")
            self.fault_ret = False
        if self.rets:
            phi = ", ".join(f"[ {v}, %{label} ]" for v, label in self.rets)
            return "\n".join(self.lines + ["ret.out:", f"  %ret.v = phi i32 {phi}",
                                            "  ret i32 %ret.v"])
        return "\n".join(self.lines)
