"""Compile lifted IR to host code with llvmlite.

One ``Codegen`` per process owns the target machine and the one MCJIT engine (a second engine on
the same target machine crashes the process). Modules are optimised with the new pass manager at
the level chosen by the caller and added to the engine; compiled functions are returned as
addresses::

    cg = Codegen(opt_level=2)
    addrs = cg.compile(module_ir, ["b_401000", "b_401010"])   # {name: host address}
"""
from __future__ import annotations

import ctypes
import time

import llvmlite.binding as llvm

_initialised = False


def _initialise() -> None:
    global _initialised
    if not _initialised:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        llvm.initialize_native_asmparser()     # inline asm (the x87 semantics use some)
        # 128-bit division (div/idiv with 64-bit operands) lowers to __udivti3/__divti3.
        for lib in ("libgcc_s.so.1",):
            try:
                llvm.load_library_permanently(lib)
            except RuntimeError:
                pass
        _initialised = True


class CompileError(Exception):
    """The IR the lifter produced did not verify: a translator bug, reported with the IR."""


class Codegen:

    def __init__(self, opt_level: int = 2):
        _initialise()
        self.opt_level = opt_level
        target = llvm.Target.from_default_triple()
        self.tm = target.create_target_machine(opt=opt_level, codemodel="jitdefault", jit=True)
        self.engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), self.tm)
        self.pto = llvm.create_pipeline_tuning_options(speed_level=opt_level)
        self.pb = llvm.create_pass_builder(self.tm, self.pto)
        self.modules = []         # keep modules alive: the engine owns them, we keep references
        self.seconds_parse = 0.0
        self.seconds_compile = 0.0

    def compile(self, ir_text: str, names: list[str]) -> dict[str, int]:
        t0 = time.perf_counter()
        try:
            mod = self.parse(ir_text)
        except RuntimeError as e:
            raise CompileError(f"{e}\n--- IR ---\n{ir_text}") from None
        t1 = time.perf_counter()
        if self.opt_level:
            mpm = self.pb.getModulePassManager()
            mpm.run(mod, self.pb)
        self.engine.add_module(mod)
        self.engine.finalize_object()
        self.modules.append(mod)
        addrs = {n: self.engine.get_function_address(n) for n in names}
        self.seconds_parse += t1 - t0
        self.seconds_compile += time.perf_counter() - t1
        return addrs

    def parse(self, ir_text: str):
        """Parse and verify a module, with the target's data layout and triple: struct offsets
        in the IR must be the host ABI's, which the ctypes mirror of the state follows (LLVM's
        default layout aligns i64 to 4 bytes)."""
        mod = llvm.parse_assembly(ir_text)
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


BLOCK_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
