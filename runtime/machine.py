"""A guest process: memory, CPU state, translator and dispatcher, and the loop that runs it.

The loop is QEMU's pair of nested loops kept small: the native dispatcher runs blocks until it
needs the runtime; Python then serves what it asked for (translate a missing block, a syscall, a
cpuid or rdtsc, a fault) and re-enters::

    m = Machine(Options())
    m.load("guests/build/hello", ["hello"], [b"HOME=/"])
    status = m.run()
"""
from __future__ import annotations

import ctypes
import os
import sys
import time
from translator.plain import dataclass, field

from translator import Translator, native
from translator.knobs import Knobs
from translator.persist import ObjectStore
from translator.rewrite import HELPER_CPUID, HELPER_RDTSC, HELPER_RDTSCP
from translator.state import PAGE_SHIFT, PERM_W, SIGILL, SIGSEGV, CPUState, Exit, fault_address

from . import cpu
from .dispatcher import HOT_THRESHOLD, Dispatcher
from .fdtable import FdTable
from .loader import build_stack, load_elf
from .memory import GuestFault, GuestMemory
from .signals import ILL_ILLOPC, GuestTerminated, SignalState, deliver_fault, deliver_pending
from .signals import host_signals, serve_syscall, signal_name
from .syscalls import GuestExit, syscall_name

BUDGET = 1 << 20          # blocks run natively before Python gets a look
WARM = HOT_THRESHOLD // 16  # runs that make a block join a hot region around another


@dataclass
class Options:
    knobs: Knobs = field(default_factory=Knobs)   # the accuracy level (translator/knobs.py)
    stats: bool = False
    strace: bool = False
    strict: bool = False
    cache: bool = False        # the persistent translation cache (on for `jitbt run`)
    trace: object = None       # --trace: a binary file for one line per executed instruction


class Machine:
    def __init__(self, options: Options | None = None, stderr=None):
        self.options = options or Options()
        self.strace = self.options.strace
        self.stderr = stderr or sys.stderr
        self.mem = GuestMemory()
        self.state = CPUState()
        self.state_addr = ctypes.addressof(self.state)
        store = ObjectStore.default() if self.options.cache else None
        self.knobs = self.options.knobs
        self.translator = Translator(self.mem.fetch, self.knobs, store=store)
        if store is None:       # the dispatcher is jitbt's own code: a cached run stored it
            self.translator.codegen.runtime_store = ObjectStore.default()
        self.dispatcher = Dispatcher(self.translator.codegen, self.knobs.warmup,
                                     kept=store is not None, tiered=self.translator.tiered)
        d = self.dispatcher
        self.translator.on_hold = lambda a, held: d.hold(a) if held else d.release(a)
        self.translator.on_compiled = self._come_back
        self.translator.runs = d.count
        self.translator.peek = self._peek
        self.translator.cache.on_evict = self.dispatcher.remove
        self.mem.on_unmap = self._code_unmapped
        if self.knobs.smc == "page":
            self.translator.cache.on_put = lambda t, pages: self.mem.protect_code(pages)
        self.trace = Trace(self, self.options.trace) if self.options.trace else None
        self.fds = FdTable()
        self.brk_start = self.brk = self.brk_limit = 0
        self.unimplemented: dict[int, int] = {}
        self.seconds_run = 0.0
        self.seconds_native = 0.0         # inside the dispatcher and translated code
        self.exit_counts = {name: 0 for name in Exit.NAMES.values()}
        self.signals = SignalState()      # dispositions, mask, pending signals, alternate stack
        self.killed_by = 0                # the signal that ended the guest, if one did
        self.smc_writes = 0               # stores that hit translated code (smc=page)
        self.stepped: dict = {}           # (address, bytes) -> instruction run on its own

    # ---- setup -------------------------------------------------------------------------------
    def load(self, path: str, argv: list[bytes], envp: list[bytes]) -> None:
        self.image = image = load_elf(path, self.mem)
        sp = build_stack(self.mem, image, argv, envp)
        self.brk_start = self.brk = image.brk
        self.brk_limit = image.brk + (1 << 30)
        self.state.gpr[4] = sp
        self.state.rip = image.entry
        self.state.mxcsr = 0x1F80
        if self.knobs.routines == "libc":    # hle: libc routines found by symbol run natively
            from translator.hle import find_routines
            self.translator.add_routines(find_routines(path, image.load_bias, self.mem.fetch))

    def _code_unmapped(self, start: int, end: int) -> None:
        for t in self.translator.cache.invalidate_range(start, end):
            self.dispatcher.remove(t)
        if self.trace:
            self.trace.forget()

    def _code_stored(self, addr: int) -> bool:
        """A store faulted at `addr`. If it hit write-protected translated code the guest may
        write (smc=page), run the storing instruction on its own with those pages writable,
        drop the translations overlapping the bytes it changed, and return True (execution
        goes on after the store, so new code takes effect before the next instruction).
        Pages left with no translations become writable again."""
        mem = self.mem
        first, last = addr >> PAGE_SHIFT, (addr + 511) >> PAGE_SHIFT   # fxsave writes 512 bytes
        pages = [p for p in range(first, last + 1) if mem.code_pages.get(p)]
        if not pages:
            return False
        self.smc_writes += 1
        self.translator.written_pages.update(pages)
        view, perms = mem.view, mem.perms
        before = {p: bytes(view[p << PAGE_SHIFT:(p + 1) << PAGE_SHIFT]) for p in pages}
        for p in pages:
            perms[p] |= PERM_W
        try:
            self._step(self.state.rip)
        finally:
            for p in pages:
                if p in mem.code_pages:
                    perms[p] &= ~PERM_W
        for p in pages:
            for start, end in _changed(before[p], view[p << PAGE_SHIFT:(p + 1) << PAGE_SHIFT]):
                self._code_unmapped((p << PAGE_SHIFT) + start, (p << PAGE_SHIFT) + end)
            if mem.code_pages.get(p) and not self.translator.cache.on_page(p):
                mem.code_written(p << PAGE_SHIFT, 1)        # no code left: writable again
        return True

    def _step(self, rip: int) -> None:
        """Run the one instruction at `rip`, translated on its own and not cached."""
        tr = self.translator
        block = tr.decoder.decode_block(self.mem.fetch, rip, 1)
        key = (rip, block.insns[0].raw if block.insns else b"")
        fn = self.stepped.get(key)
        if fn is None:
            (t,) = tr.compile_blocks([block], hot=False)
            fn = self.stepped[key] = tr.entry(t.host)
        code = fn(self.state_addr, self.mem.base, self.mem.perm_base)
        if code != Exit.CONTINUE:
            self._serve(code)

    # ---- running -----------------------------------------------------------------------------
    def run(self) -> int:
        """Run the guest to its end; returns the exit status (128 + signal for a fatal signal)."""
        t0 = time.perf_counter()
        try:
            with host_signals(self):      # SIGINT, SIGTERM, ... sent to jitbt are the guest's
                self._loop()
        except GuestExit as e:
            return e.status
        except GuestTerminated as e:
            if e.args[0]:                 # faults explain themselves; sent signals end silently
                self.report(e.args[0])
            self.killed_by = e.signo
            return 128 + e.signo
        finally:
            self.translator.close()
            self.seconds_run = time.perf_counter() - t0
            if self.translator.handlers is not None:
                self.dispatcher.name_handlers(self.translator.handlers.addr)
            self.dispatcher.write_perf_map()
            if self.trace:
                self.trace.flush()
        raise AssertionError("unreachable")

    def _peek(self, address: int) -> int | None:
        try:
            return self.mem.read_u64(address)
        except GuestFault:
            return None

    def _loop(self) -> None:
        st, disp, tr = self.state, self.dispatcher, self.translator
        mem_base, perm_base = self.mem.base, self.mem.perm_base
        names = Exit.NAMES
        clock = time.perf_counter
        while True:
            # (the budget before the look at the background thread's regions: one it finishes
            # after the look sets the ticks to 0, and the guest comes back for it at once)
            st.ticks = BUDGET
            if tr.pending:                  # hot regions compiled in the background
                for t in tr.finished():
                    disp.insert(t)
            if tr.handlers is not None and tr.handlers.building:
                tr.handlers.poll()          # interpreter handlers built in the background
            if tr.warm_worker is not None and tr.warm_worker.ready():
                tr.store_later()            # cold modules compiled for the store
            t0 = clock()
            code = disp.run(self.state_addr, mem_base, perm_base)
            self.seconds_native += clock() - t0
            self.exit_counts[names.get(code, "?")] = self.exit_counts.get(names.get(code, "?"), 0) + 1
            if code == Exit.MISS:
                for t in tr.lookup_all(st.rip):
                    disp.insert(t)
            else:
                self._serve(code)

    def _come_back(self) -> None:
        """Have the guest's code return to the runtime soon (from another thread): the
        dispatcher and chained transfers spend the state's ticks, and leave (Exit.BUDGET) when
        none are left. A hot region keeps its ticks in a register and sees this at its next
        exit; interpreted and cold code at the next block. (A region used to wait up to a
        budget, 1M blocks of interpreted code: crc32's loop, interpreted meanwhile, 10 ms.)"""
        self.state.ticks = 0

    def _serve(self, code: int) -> None:
        """Do what translated code left the dispatcher for (other than a miss)."""
        st, disp = self.state, self.dispatcher
        if code == Exit.HOT and disp.warms and self.translator.is_interpreted(st.rip) \
                and st.rip not in disp.counting:
            # An interpreted block ran `warmup` times: compiled now, with the blocks
            # around it that ran, each counting on towards HOT_THRESHOLD (or the hot regions
            # an earlier run stored at them); or, compiled for the store on a thread, they
            # count on interpreted.
            for t, runs in self.translator.warm_up(st.rip, disp.count):
                disp.insert(t, runs, warmed=t.interpreted)
        elif code == Exit.HOT:
            out = self.translator.promote(st.rip, lambda a: disp.count(a) >= WARM)
            for t in out:
                disp.insert(t)
            if all(t.address != st.rip for t in out):
                disp.recount(st.rip)    # taken into a region that leads to it (or compiling)
        elif code == Exit.TRACE:
            self.trace.flush()
        elif code == Exit.MISS:
            for t in self.translator.lookup_all(st.rip):
                disp.insert(t)
        elif code == Exit.SYSCALL:
            serve_syscall(self)       # then delivers the signals that became deliverable
        elif code == Exit.HELPER:
            self._helper(st.exit_arg)
        elif code == Exit.FAULT:
            self.fault(*fault_address(st.fault_sig, st.fault_addr, self.mem.perms))
        elif code == Exit.UNSUPPORTED:
            self.unsupported(st.rip)
        elif code == Exit.BUDGET:
            deliver_pending(self)
        elif code == Exit.DECLINE:     # a replaced routine cannot do this call: the guest's own
            disp.insert(self.translator.decline(st.rip))      # code runs there from now on
        else:
            raise RuntimeError(f"translated code returned unknown exit code {code}")

    def _helper(self, which: int) -> None:
        st = self.state
        if which == HELPER_CPUID:
            regs = cpu.cpuid(st.gpr[0] & 0xFFFFFFFF, st.gpr[1] & 0xFFFFFFFF)
            for reg, value in zip((0, 3, 1, 2), regs):
                st.gpr[reg] = value
        elif which in (HELPER_RDTSC, HELPER_RDTSCP):
            if self.knobs.clock == "virtual":      # modelled cycles (runtime/clock.py)
                from .clock import tsc as virtual_tsc
                tsc = virtual_tsc(self)
            else:
                tsc = time.monotonic_ns()
            st.gpr[0] = tsc & 0xFFFFFFFF
            st.gpr[2] = (tsc >> 32) & 0xFFFFFFFF
            if which == HELPER_RDTSCP:
                st.gpr[1] = 0
        else:
            raise RuntimeError(f"unknown helper {which}")

    def describe_insn(self, address: int) -> str:
        from translator.decoder import disassemble
        code = self.mem.fetch(address, 15)
        insns = disassemble(code, address)[:1]
        if insns:
            return insns[0].describe()
        return f"{address:#x}: {code[:8].hex(' ')}  (bad)" if code else f"{address:#x}: (not executable)"

    def fault(self, signo: int, addr: int) -> None:
        """A guest fault: the guest's handler runs if it has one that is not blocked; otherwise
        the default action ends the process with one line of explanation."""
        if signo == SIGSEGV and self.mem.code_pages and self._code_stored(addr):
            return
        if deliver_fault(self, signo, addr):
            return
        where = self.describe_insn(self.state.rip)
        extra = f", accessing {addr:#x}" if signo == 11 and addr else ""
        raise GuestTerminated(signo, f"guest killed by {signal_name(signo)} at {where}{extra}")

    def unsupported(self, address: int) -> None:
        """No semantics for the instruction: SIGILL (ILL_ILLOPC) to a guest handler if there is
        one, otherwise reported as such."""
        if deliver_fault(self, SIGILL, address, ILL_ILLOPC):
            return
        raise GuestTerminated(SIGILL, f"unsupported instruction at {self.describe_insn(address)} "
                                      f"(no semantics yet); guest killed by SIGILL")

    def unimplemented_syscall(self, nr: int) -> None:
        first = nr not in self.unimplemented
        self.unimplemented[nr] = self.unimplemented.get(nr, 0) + 1
        if self.options.strict:
            raise GuestTerminated(31, f"unimplemented syscall {nr} (--strict)")
        if first:
            self.report(f"unimplemented syscall {self.syscall_label(nr)}, returning -ENOSYS")

    # ---- reporting ---------------------------------------------------------------------------
    def report(self, line: str) -> None:
        self.stderr.write(f"jitbt: {line}\n")
        self.stderr.flush()

    def strace_line(self, line: str) -> None:
        self.stderr.write(f"[{os.getpid()}] {line}\n")
        self.stderr.flush()

    def _store_text(self) -> str:
        st = self.translator.store
        if st is None:
            return "off"
        load = sum(cg.seconds_load for cg in self.translator.codegens)
        return (f"{st.hits} hits, {st.misses} misses, {st.stored} stored, {st.corrupt} corrupt "
                f"(rebuilt); loading {load:.4f} s")

    @staticmethod
    def syscall_label(nr: int) -> str:
        name = syscall_name(nr)
        return str(nr) if name == f"syscall {nr}" else f"{nr} ({name})"

    def unimplemented_text(self) -> str:
        return ", ".join(f"{self.syscall_label(n)} {c}x" for n, c in sorted(self.unimplemented.items()))

    def routines_text(self) -> str:
        """Each replaced routine found in the program and how often it ran natively; declined
        ones are marked."""
        from translator.hle import ROUTINES
        tr = self.translator
        numbers = sorted(set(tr.routines.values()))
        if not numbers:
            return "none (no symbol table, or no libc jitbt knows)"
        declined = {tr.routines[a] for a in tr.declined if a in tr.routines}
        return ", ".join(f"{ROUTINES[n].name} {self.state.hle_calls[n]}"
                         + (" (declined)" if n in declined else "") for n in numbers)

    def stats_text(self) -> str:
        tr = self.translator
        s, cache = tr.stats, tr.cache
        native_hits = self.state.hits
        parse = sum(cg.seconds_parse for cg in tr.codegens)
        compile_ = sum(cg.seconds_compile for cg in tr.codegens)
        start = sum(cg.seconds_start for cg in tr.codegens)        # (this thread's)
        runtime_s = max(0.0, self.seconds_run - self.seconds_native - s.seconds_decode
                        - s.seconds_form - s.seconds_records - s.seconds_ir - parse - compile_
                        - start)
        if tr.background is not None:        # (the background thread starts LLVM too)
            start += tr.background.seconds_start
        lib = tr.handlers
        rows = [
            *((("blocks interpreted first", f"{s.interp_blocks}"),
               ("instructions interpreted first", f"{s.interp_insns}"),
               ("  of which from stored records",
                f"{tr.records.loaded if tr.records else 0} blocks"),
               ("blocks compiled once interpreted", f"{s.warmed} ({s.warm_insns} instructions)"),
               ("handler library", f"{os.path.basename(lib.folder)}: {len(lib.addr)} handlers, "
                f"{len(lib.chunks)} chunks, "
                f"loading {lib.seconds_load:.4f} s; built {lib.built} this run "
                f"({lib.seconds_build:.4f} s here)"
                + (f", {lib.unbuilt} wanted but not built by the exit" if lib.unbuilt else "")
                + (f", {lib.corrupt} corrupt chunks removed" if lib.corrupt else "")))
              if lib is not None else ()),
            ("blocks translated", f"{s.blocks}"),
            ("blocks decoded", f"{s.decoded}" + (f" ({s.decoded_native} by the native decoder)"
                                                  if s.decoded_native else "")),
            ("native helpers", native.state()),
            ("guest instructions translated", f"{s.insns}"),
            ("LLVM modules compiled", f"{s.modules}"),
            ("hot regions (optimising tier)", f"{s.regions} ({tr.hot_blocks} blocks)"
             + (f", {s.regions_grown} of them grown" if s.regions_grown else "")
             + (f", {s.regions_early} of them stored ones loaded when their head warmed up"
                if s.regions_early else "")
             + (f", {s.regions_dropped} dropped (code changed while compiling)"
                if s.regions_dropped else "")
             + (f"; {s.regions_superseded} more not compiled (a region queued after them "
                f"holds them)" if s.regions_superseded else "")),
            ("accuracy", f"{self.knobs.level}: {self.knobs.describe()}"),
            ("blocks run by the dispatcher loop", f"{native_hits}"),
            *((("instructions retired", f"{self.state.icount}"),
               ("modelled cycles", f"{self.state.cycles}")) if self.knobs.counting else ()),
            ("stores into translated code", f"{self.smc_writes}"),
            ("block cache hits", f"{cache.hits}"),
            ("block cache misses", f"{cache.misses}"),
            ("dispatcher", "loaded from the store" if tr.codegen.runtime_loaded
             else "compiled"),
            ("persistent cache", self._store_text()),
            ("returns to the runtime", ", ".join(f"{k} {v}" for k, v in self.exit_counts.items() if v)),
            ("time starting LLVM and compiling the dispatcher", f"{start:.4f} s"),
            ("time decoding", f"{s.seconds_decode:.4f} s"),
            ("time forming hot regions (decoding again)", f"{s.seconds_form:.4f} s"),
            *((("time making interpreter records", f"{s.seconds_records:.4f} s"),)
              if lib is not None else ()),
            ("time building IR", f"{s.seconds_ir:.4f} s"),
            *((("  of which for the optimising tier", f"{s.seconds_hot_ir:.4f} s"),)
              if tr.tiered else ()),
            ("time parsing IR", f"{parse:.4f} s"),
            ("time optimising + compiling", f"{compile_:.4f} s"),
            *((f"  of which {name} tier", f"{cg.seconds_compile:.4f} s")
              for name, cg in zip(("cold", "optimising"), tr.codegens) if tr.tiered),
            *((("time compiling on the background thread",
                f"{tr.background.seconds:.4f} s ({tr.background.jobs} regions)"),)
              if tr.background else ()),
            *((("time compiling cold halves on a second thread",
                f"{tr.cold_worker.seconds:.4f} s ({tr.cold_worker.jobs} modules)"),)
              if tr.cold_worker else ()),
            *((("time compiling warmed-up blocks for the store on a thread",
                f"{tr.warm_worker.seconds:.4f} s ({s.stored_later} blocks, "
                f"{tr.warm_worker.jobs} modules)"),)
              if tr.warm_worker else ()),
            ("time executing translated code", f"{self.seconds_native:.4f} s"),
            ("time in the runtime (syscalls, ...)", f"{runtime_s:.4f} s"),
            ("total run time", f"{self.seconds_run:.4f} s"),
        ]
        if self.unimplemented:
            rows.append(("unimplemented syscalls", self.unimplemented_text()))
        if self.knobs.routines == "libc":
            rows.append(("routines replaced", self.routines_text()))
        width = max(len(k) for k, _ in rows)
        return "jitbt stats:\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in rows) + "\n"


def _changed(old: bytes, new, chunk: int = 64) -> list[tuple[int, int]]:
    """The [start, end) ranges (in `chunk`-byte steps) where two equal-length buffers differ."""
    out = []
    for i in range(0, len(old), chunk):
        if old[i:i + chunk] != new[i:i + chunk]:
            if out and out[-1][1] == i:
                out[-1] = (out[-1][0], i + chunk)
            else:
                out.append((i, i + chunk))
    return out


class Trace:
    """--trace: translated code appends the address of every instruction it starts to a native
    buffer; this writes them out, one line each (address and instruction), when the buffer is
    full and when the guest ends."""
    WORDS = 1 << 16

    def __init__(self, machine, file):
        self.m, self.file = machine, file
        self.buf = (ctypes.c_uint64 * self.WORDS)()
        st = machine.state
        st.trace_buf, st.trace_n, st.trace_cap = ctypes.addressof(self.buf), 0, self.WORDS
        self.text: dict[int, bytes] = {}

    def forget(self) -> None:
        """Code changed: disassemble again."""
        self.text.clear()

    def flush(self) -> None:
        st = self.m.state
        n, st.trace_n = st.trace_n, 0
        text, out = self.text, []
        for addr in self.buf[:n]:
            line = text.get(addr)
            if line is None:
                line = text[addr] = (self.m.describe_insn(addr) + "\n").encode()
            out.append(line)
        self.file.write(b"".join(out))
        self.file.flush()
