"""LLVM through llvmlite's shared library, without importing llvmlite.binding.

Importing llvmlite.binding costs a cold run 30-45 ms before anything is compiled: the package
imports its whole object model (llvmlite.ir, values, types, the execution engines) and
importlib.resources to find its library. The tiers that compile to object code (the cold tier,
the background thread's optimising tier, the interpreter's handler library) need a dozen of the
library's functions: these are called here directly with ctypes, on the library llvmlite.binding
would load (the same file, so the process has one LLVM whichever way it is reached). MCJIT (the
entry trampoline, a tier that compiles in-line) still goes through llvmlite.binding
(translator/codegen.py imports it when first needed).

Calls made here do not take llvmlite's process-wide lock: each thread that compiles has its own
context, target machine and pass builder, which LLVM allows to be used at once (see
translator/background.py). The signatures are those of llvmlite 0.50's C layer (setup.cfg pins
the minor version)::

    tm = TargetMachine(opt=2)
    data = emit_object(ir_text, tm, PassBuilder(tm, 2))     # relocatable ELF object code
"""
from __future__ import annotations

import ctypes
import os
import threading
import time
from ctypes import POINTER, c_bool, c_char_p, c_int, c_size_t, c_void_p

from . import host

_LOCK = threading.Lock()
_LIB = None
seconds_start = 0.0          # loading the library and setting up the native target (once)

_SIGNATURES = {
    "LLVMPY_InitializeNativeTarget": ((), None),
    "LLVMPY_InitializeNativeAsmPrinter": ((), None),
    "LLVMPY_InitializeNativeAsmParser": ((), None),
    "LLVMPY_LoadLibraryPermanently": ((c_char_p, POINTER(c_char_p)), c_bool),
    "LLVMPY_DisposeString": ((c_void_p,), None),
    "LLVMPY_GetDefaultTargetTriple": ((POINTER(c_char_p),), None),
    "LLVMPY_GetHostCPUName": ((POINTER(c_char_p),), None),
    "LLVMPY_GetHostCPUFeatures": ((POINTER(c_char_p),), c_int),
    "LLVMPY_GetTargetFromTriple": ((c_char_p, POINTER(c_char_p)), c_void_p),
    "LLVMPY_CreateTargetMachine": ((c_void_p, c_char_p, c_char_p, c_char_p, c_int, c_char_p,
                                    c_char_p, c_int, c_int, c_char_p), c_void_p),
    "LLVMPY_DisposeTargetMachine": ((c_void_p,), None),
    "LLVMPY_GetTargetMachineTriple": ((c_void_p, POINTER(c_char_p)), None),
    "LLVMPY_CreateTargetMachineData": ((c_void_p,), c_void_p),
    "LLVMPY_CopyStringRepOfTargetData": ((c_void_p, POINTER(c_char_p)), None),
    "LLVMPY_DisposeTargetData": ((c_void_p,), None),
    "LLVMPY_CreatePipelineTuningOptions": ((), c_void_p),
    "LLVMPY_DisposePipelineTuningOptions": ((c_void_p,), None),
    "LLVMPY_CreatePassBuilder": ((c_void_p, c_void_p), c_void_p),
    "LLVMPY_DisposePassBuilder": ((c_void_p,), None),
    "LLVMPY_RunNewModulePassManager": ((c_void_p, c_void_p, c_void_p), None),
    "LLVMPY_DisposeNewModulePassManger": ((c_void_p,), None),
    "LLVMPY_buildPerModuleDefaultPipeline": ((c_void_p, c_int), c_void_p),
    "LLVMPY_CreateNewModulePassManager": ((), c_void_p),
    "LLVMPY_module_AddAlwaysInlinerPass": ((c_void_p,), None),
    "LLVMPY_module_AddGlobalDCEPass": ((c_void_p,), None),
    "LLVMPY_buildFunctionSimplificationPipeline": ((c_void_p, c_int), c_void_p),
    "LLVMPY_RunNewFunctionPassManager": ((c_void_p, c_void_p, c_void_p), None),
    "LLVMPY_DisposeNewFunctionPassManger": ((c_void_p,), None),
    "LLVMPY_ModuleFunctionsIter": ((c_void_p,), c_void_p),
    "LLVMPY_FunctionsIterNext": ((c_void_p,), c_void_p),
    "LLVMPY_DisposeFunctionsIter": ((c_void_p,), None),
    "LLVMPY_IsDeclaration": ((c_void_p,), c_bool),
    "LLVMPY_ContextCreate": ((), c_void_p),
    "LLVMPY_ContextDispose": ((c_void_p,), None),
    "LLVMPY_ParseAssembly": ((c_void_p, c_char_p, POINTER(c_char_p)), c_void_p),
    "LLVMPY_VerifyModule": ((c_void_p, POINTER(c_char_p)), c_bool),
    "LLVMPY_SetDataLayout": ((c_void_p, c_char_p), None),
    "LLVMPY_SetTarget": ((c_void_p, c_char_p), None),
    "LLVMPY_DisposeModule": ((c_void_p,), None),
    "LLVMPY_TargetMachineEmitToMemory": ((c_void_p, c_void_p, c_int, POINTER(c_char_p)),
                                         c_void_p),
    "LLVMPY_GetBufferStart": ((c_void_p,), c_void_p),
    "LLVMPY_GetBufferSize": ((c_void_p,), c_size_t),
    "LLVMPY_DisposeMemoryBuffer": ((c_void_p,), None),
}


class _Fns:
    """The library's functions, typed."""

    def __init__(self, lib: ctypes.CDLL):
        for name, (args, res) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, res
            setattr(self, name.removeprefix("LLVMPY_"), fn)


def _library_path() -> str:
    """llvmlite's shared library, found without importing llvmlite.binding (the package itself
    is small: the persistent store's keys hold its version)."""
    import llvmlite
    for folder in llvmlite.__path__:
        path = os.path.join(folder, "binding", "libllvmlite.so")
        if os.path.exists(path):
            return path
    raise ImportError("llvmlite's libllvmlite.so is missing")


def _open(path: str) -> ctypes.CDLL:
    """The shared library at `path`, opened without holding the GIL. ctypes.CDLL calls dlopen
    holding it, and opening llvmlite's library (178 MB, some 700 static constructors) takes
    12-40 ms: the compile thread opens it when the first hot region arrives, and the main
    thread, interpreting the guest meanwhile, stopped for all of it. dlopen called as a foreign
    function runs outside the GIL; CDLL then wraps the handle (dlopen again finds the library
    already open and only counts it)."""
    dlopen = getattr(ctypes.CDLL(None), "dlopen", None)
    if dlopen is not None:
        dlopen.argtypes, dlopen.restype = (c_char_p, c_int), c_void_p
        if dlopen(os.fsencode(path), os.RTLD_NOW | os.RTLD_LOCAL):
            return ctypes.CDLL(path)
    return ctypes.CDLL(path)        # (raises OSError with dlerror's text)


def lib() -> _Fns:
    """The library, loaded and its native target set up on first use (any thread)."""
    global _LIB, seconds_start
    if _LIB is None:
        with _LOCK:
            if _LIB is None:
                t0 = time.perf_counter()
                fns = _Fns(_open(_library_path()))
                fns.InitializeNativeTarget()
                fns.InitializeNativeAsmPrinter()
                fns.InitializeNativeAsmParser()        # inline asm (the x87 semantics use some)
                # 128-bit division (div/idiv with 64-bit operands) lowers to __udivti3/__divti3.
                err = c_char_p()
                if fns.LoadLibraryPermanently(b"libgcc_s.so.1", ctypes.byref(err)):
                    _free(fns, err)
                seconds_start += time.perf_counter() - t0
                _LIB = fns
    return _LIB


def _free(fns: _Fns, s: c_char_p) -> str:
    """The text of a string LLVM made, which is then freed."""
    text = s.value.decode(errors="replace") if s.value else ""
    if s.value is not None:
        fns.DisposeString(ctypes.cast(s, c_void_p))
    return text


def _string(fn, *args) -> str:
    fns = lib()
    out = c_char_p()
    fn(*args, ctypes.byref(out))
    return _free(fns, out)


_HOST_CPU: tuple[str, str] | None = None


def host_cpu() -> tuple[str, str]:
    """The CPU name and feature string code is generated for: LLVM's host CPU and the features
    it detects (translator/host.py: native), or ("", "") for baseline x86-64 (generic)."""
    global _HOST_CPU
    if _HOST_CPU is None:
        if host.choice() == "native":
            fns = lib()
            out = c_char_p()
            ok = fns.GetHostCPUFeatures(ctypes.byref(out))
            features = _free(fns, out) if ok else ""
            _HOST_CPU = (_string(fns.GetHostCPUName), features)
        else:
            _HOST_CPU = ("", "")
    return _HOST_CPU


class TargetMachine:
    """A target machine for the host (its CPU and features: host_cpu), generating code for JIT
    use ('jitdefault' code model) at `opt` (the code generator's level); its data layout and
    triple, for the modules it emits."""

    def __init__(self, opt: int):
        fns = lib()
        cpu, features = host_cpu()
        triple = _string(fns.GetDefaultTargetTriple).encode()
        err = c_char_p()
        target = fns.GetTargetFromTriple(triple, ctypes.byref(err))
        if not target:
            raise RuntimeError(f"no LLVM target for {triple.decode()}: {_free(fns, err)}")
        self.handle = fns.CreateTargetMachine(target, triple, cpu.encode(), features.encode(),
                                              opt, b"default",
                                              b"jitdefault", 0, 1, b"")
        if not self.handle:
            raise RuntimeError("LLVM could not create a target machine")
        self.triple = _string(fns.GetTargetMachineTriple, self.handle)
        data = fns.CreateTargetMachineData(self.handle)
        try:
            self.layout = _string(fns.CopyStringRepOfTargetData, data)
        finally:
            fns.DisposeTargetData(data)

    def __del__(self):
        if _LIB is not None and getattr(self, "handle", None):
            _LIB.DisposeTargetMachine(self.handle)
            self.handle = None


class PassBuilder:
    """The optimisation of `tm`'s modules at `speed` (-O1..-O3); one thread's.

    A translation's module is one function (a region or a block) and its small helpers. It
    gets LLVM's function simplification pipeline at that level, the part of the default
    pipeline that does the work on such code (SROA, EarlyCSE, InstCombine, jump threading,
    LICM, GVN, DSE, ...), once the always-inline helpers are inlined and dropped: the default
    pipeline's module passes (inliner, IPSCCP, GlobalOpt, function attributes) and its late
    loop pipeline (rotate, unroll, vectorizers, LICM again) cost a fifth to a third of the
    optimisation time of one (strings' hot regions on the compile thread: 2.35 -> 2.01 s),
    and warm runs, whose hot code it all is, were within noise of the default pipeline's on
    every benchmark workload. `whole`: LLVM's default module pipeline, for the interpreter's
    handler library (hundreds of functions a module, built ahead of time: its interpreted
    crc32 loop ran 5% slower with the function pipeline)."""

    def __init__(self, tm: TargetMachine, speed: int, whole: bool = False):
        fns = lib()
        self.tm, self.speed, self.whole = tm, speed, whole   # (the builder refers to both)
        self.pto = fns.CreatePipelineTuningOptions()
        self.handle = fns.CreatePassBuilder(tm.handle, self.pto)

    def run(self, module) -> None:
        """Optimise `module` (a pipeline runs once: new ones each time)."""
        fns = lib()
        if self.whole:
            mpm = fns.buildPerModuleDefaultPipeline(self.handle, self.speed)
        else:
            mpm = fns.CreateNewModulePassManager()
            fns.module_AddAlwaysInlinerPass(mpm)
            fns.module_AddGlobalDCEPass(mpm)
        try:
            fns.RunNewModulePassManager(mpm, module, self.handle)
        finally:
            fns.DisposeNewModulePassManger(mpm)
        if self.whole:
            return
        functions = []
        it = fns.ModuleFunctionsIter(module)
        try:
            while fn := fns.FunctionsIterNext(it):
                if not fns.IsDeclaration(fn):
                    functions.append(fn)
        finally:
            fns.DisposeFunctionsIter(it)
        fpm = fns.buildFunctionSimplificationPipeline(self.handle, self.speed)
        try:
            for fn in functions:
                fns.RunNewFunctionPassManager(fpm, fn, self.handle)
        finally:
            fns.DisposeNewFunctionPassManger(fpm)

    def __del__(self):
        if _LIB is not None and getattr(self, "handle", None):
            _LIB.DisposePassBuilder(self.handle)
            _LIB.DisposePipelineTuningOptions(self.pto)
            self.handle = None


def emit_object(text: str, tm: TargetMachine, pb: PassBuilder | None,
                times: list | None = None) -> bytes:
    """Object code of the IR module `text`: parsed and verified in an LLVM context of its own,
    optimised by `pb` (None: not at all), emitted by `tm`. Any thread may call it, with a target
    machine and pass builder that only it uses. `times`, when given, gets the seconds parsing
    and verifying took. A module that does not parse or verify raises RuntimeError."""
    t0 = time.perf_counter()
    fns = lib()
    ctx = fns.ContextCreate()
    try:
        err = c_char_p()
        mod = fns.ParseAssembly(ctx, text.encode(), ctypes.byref(err))
        if not mod:
            raise RuntimeError(f"LLVM IR parsing error\n{_free(fns, err)}")
        try:
            fns.SetDataLayout(mod, tm.layout.encode())
            fns.SetTarget(mod, tm.triple.encode())
            err = c_char_p()
            if fns.VerifyModule(mod, ctypes.byref(err)):
                raise RuntimeError(_free(fns, err))
            _free(fns, err)
            if times is not None:
                times.append(time.perf_counter() - t0)
            if pb is not None:
                pb.run(mod)
            err = c_char_p()
            buf = fns.TargetMachineEmitToMemory(tm.handle, mod, 1, ctypes.byref(err))
            if not buf:
                raise RuntimeError(_free(fns, err))
            try:
                return ctypes.string_at(fns.GetBufferStart(buf), fns.GetBufferSize(buf))
            finally:
                fns.DisposeMemoryBuffer(buf)
        finally:
            fns.DisposeModule(mod)
    finally:
        fns.ContextDispose(ctx)
