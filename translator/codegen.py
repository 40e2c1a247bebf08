"""Compile lifted IR to host code with LLVM.

``compile_keyed``, what the translator compiles through, looks a module up by its key in this
process, then in the persistent object store (translator/persist.py), and only on a miss builds
its IR and compiles it to object code (translator/llvmraw.py: llvmlite's library, reached
without importing llvmlite.binding), which jitbt's own loader (translator/objload.py) loads and
the store keeps. The optimisation pipeline is the new pass manager's at the Codegen's level::

    cg = Codegen(opt_level=2)
    addrs = cg.compile_keyed(key, build_ir, names)           # {name: host address}
    addrs = cg.compile(module_ir, ["jitbt_enter"])          # through MCJIT (no key, no store)

LLVM is started only when something must be compiled, so a warm run that finds everything in
the store never loads LLVM (a warm static hello world: 112 -> 89 ms); a cold one loads its
library without llvmlite.binding's Python layer (hello world cold: 178 -> 157 ms). MCJIT
(llvmlite.binding, one engine per process: a second engine on the same target machine crashes
the process) is set up only for ``compile``, used for the entry trampoline that calls
translated code from Python, and for object code jitbt's loader declines.
"""
from __future__ import annotations

import time

from . import llvmraw, persist
from .objload import ObjectLoader, ObjectLoadError

OBJECTS = ObjectLoader()     # one per process, like the engine: symbols are process-wide


def _initialise():
    """llvmlite's binding (imported on first use), on the library llvmraw set up."""
    llvmraw.lib()               # (the native target, libgcc_s: once a process)
    import llvmlite.binding as llvm
    return llvm


class CompileError(Exception):
    """The IR the lifter produced did not verify: a translator bug, reported with the IR."""


class Codegen:

    def __init__(self, opt_level: int = 2, store=None):
        self.store = store          # persist.ObjectStore, or None
        # Where the runtime's own modules (suffix persist.RUNTIME: the dispatcher) are looked
        # up when there is no store (jitbt run --no-cache): they are jitbt's code, not a
        # translation of the guest, like the interpreter's handler library, which such runs
        # use too. Read only: a run without a store leaves nothing behind.
        self.runtime_store = None
        self.runtime_loaded = 0     # runtime modules loaded from a store, not compiled
        self.loaded: dict[str, dict[str, int]] = {}     # key -> addresses, this process
        self.opt_level = opt_level
        self._llvm = None           # (target machine, engine, pass builder), made when needed
        self._raw = None            # (llvmraw target machine, pass builder): for object code
        self.modules = []         # keep modules alive: the engine owns them, we keep references
        self.seconds_parse = 0.0
        self.seconds_compile = 0.0
        self.seconds_load = 0.0       # loading object code from the persistent store
        # Starting LLVM (target machine, engine, pass builder) and compiling the runtime's own
        # modules (the dispatcher): a fixed cost of each process, not translation of guest code.
        self.seconds_start = 0.0

    def _start_llvm(self) -> tuple:
        if self._llvm is None:
            t0 = time.perf_counter()
            llvm = _initialise()
            target = llvm.Target.from_default_triple()
            cpu, features = llvmraw.host_cpu()
            tm = target.create_target_machine(cpu=cpu, features=features, opt=self.opt_level,
                                              codemodel="jitdefault", jit=True)
            engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), tm)
            pb = llvm.create_pass_builder(
                tm, llvm.create_pipeline_tuning_options(speed_level=self.opt_level))
            self._llvm = (tm, engine, pb)
            self.seconds_start += time.perf_counter() - t0
        return self._llvm

    @property
    def raw(self) -> tuple:
        """The target machine and pass builder (None at -O0) that make object code through
        translator/llvmraw.py, without importing llvmlite.binding or setting up MCJIT (which
        cost a cold run 30-45 ms more before its first block compiled). Main thread only."""
        if self._raw is None:
            t0 = time.perf_counter()
            tm = llvmraw.TargetMachine(self.opt_level)
            self._raw = (tm, llvmraw.PassBuilder(tm, self.opt_level) if self.opt_level else None)
            self.seconds_start += time.perf_counter() - t0
        return self._raw

    @property
    def tm(self):
        """The target machine (LLVM started on first use)."""
        return self._start_llvm()[0]

    @property
    def engine(self):
        return self._start_llvm()[1]

    @property
    def pb(self):
        """The pass builder of this codegen's optimisation level."""
        return self._start_llvm()[2]

    def compile(self, ir_text: str, names: list[str], module_name: str = "") -> dict[str, int]:
        self._start_llvm()
        t0 = time.perf_counter()
        try:
            mod = self.parse(ir_text)
        except RuntimeError as e:
            raise CompileError(f"{e}\n--- IR ---\n{ir_text}") from None
        t1 = time.perf_counter()
        if self.opt_level:
            self.pb.getModulePassManager().run(mod, self.pb)
        if module_name:
            mod.name = module_name
        self.engine.add_module(mod)
        self.engine.finalize_object()
        self.modules.append(mod)
        addrs = {n: self.engine.get_function_address(n) for n in names}
        self.seconds_parse += t1 - t0
        self.seconds_compile += time.perf_counter() - t1
        return addrs

    def compile_keyed(self, key: str, build_ir, names: list[str], suffix: str = persist.SUFFIX
                      ) -> dict[str, int]:
        """Addresses of `names` in the module with this key: from this process, from the
        persistent store, or by compiling `build_ir()` to object code (through llvmraw, outside
        llvmlite's lock: another thread may compile at the same time, see
        Translator._compile_cold), which jitbt's loader loads and the store keeps. (`suffix`:
        the kind of store entry; the store's statistics count translations, ".o", only.
        `suffix` ".rt", a module of the runtime's own: its time counts as start-up,
        seconds_start.)"""
        addrs = self.loaded.get(key)
        if addrs is not None:
            return addrs
        if suffix == persist.RUNTIME:
            parse, compile_ = self.seconds_parse, self.seconds_compile
            try:
                return self._compile_keyed(key, build_ir, names, suffix)
            finally:
                self.seconds_start += (self.seconds_parse - parse) + (self.seconds_compile
                                                                      - compile_)
                self.seconds_parse, self.seconds_compile = parse, compile_
        return self._compile_keyed(key, build_ir, names, suffix)

    def _compile_keyed(self, key: str, build_ir, names: list[str], suffix: str
                       ) -> dict[str, int]:
        store = self.store
        if store is None and suffix == persist.RUNTIME:
            store = self.runtime_store
        if store is not None:
            data = store.get(key, suffix)
            if data is not None:
                addrs = self.load_object(key, data, names)
                if addrs is not None:
                    self.runtime_loaded += suffix == persist.RUNTIME
                    return addrs
        text = build_ir()
        tm, pb = self.raw
        t0, times = time.perf_counter(), []
        try:
            data = llvmraw.emit_object(text, tm, pb, times)
        except RuntimeError as e:
            raise CompileError(f"{e}\n--- IR ---\n{text}") from None
        self.seconds_parse += times[0] if times else 0.0
        self.seconds_compile += time.perf_counter() - t0 - (times[0] if times else 0.0)
        addrs = self.load_object(key, data, names)
        if addrs is None:
            raise CompileError(f"{names} missing from the object code of {key}")
        if self.store is not None:
            self.store.put(key, data, suffix)
        return addrs

    def load_object(self, key: str, data: bytes, names: list[str]) -> dict[str, int] | None:
        """Add object code (from the store, or compiled on the background thread) to the engine:
        the addresses of `names`, or None when one is missing from it. jitbt's loader loads
        it; MCJIT only what that loader declines (it never has, for LLVM's own output)."""
        t0 = time.perf_counter()
        try:
            symbols = OBJECTS.load(data)
            addrs = {n: symbols.get(n, 0) for n in names}
        except ObjectLoadError:
            llvm = _initialise()
            self.engine.add_object_file(llvm.ObjectFileRef.from_data(data))
            self.engine.finalize_object()
            addrs = {n: self.engine.get_function_address(n) for n in names}
        self.seconds_load += time.perf_counter() - t0
        if not all(addrs.values()):
            return None
        self.loaded[key] = addrs
        return addrs

    def parse(self, ir_text: str):
        """Parse and verify a module, with the target's data layout and triple: struct offsets
        in the IR must be the host ABI's, which the ctypes mirror of the state follows (LLVM's
        default layout aligns i64 to 4 bytes)."""
        mod = _initialise().parse_assembly(ir_text)
        mod.data_layout = str(self.tm.target_data)
        mod.triple = self.tm.triple
        mod.verify()
        return mod

    def optimised_ir(self, ir_text: str) -> str:
        """The IR after the optimisation pipeline, without adding it to the engine (for `blocks`)."""
        mod = self.parse(ir_text)
        if self.opt_level:
            self.pb.getModulePassManager().run(mod, self.pb)
        return str(mod)

