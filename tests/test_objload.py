"""jitbt's own object loader (translator/objload.py) against MCJIT loading the same object code,
and a warm run that needs no LLVM at all."""
import ctypes
import os
import struct
import subprocess
import sys

import llvmlite.binding as llvm
import pytest

from translator.codegen import Codegen
from translator.objload import ObjectLoader, ObjectLoadError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Writable zeroed data, a constant table, a double constant, an internal call and a 128-bit
# division (a call to libgcc's __udivti3): what translated code's objects hold.
IR = r"""
@counter = internal global i64 0
@table = internal constant [4 x i64] [i64 11, i64 22, i64 33, i64 44]

define internal i64 @helper(i64 %x) noinline {
  %y = mul i64 %x, 3
  ret i64 %y
}

define i64 @f(i64 %a, i64 %b) {
  %c = load i64, ptr @counter
  %c1 = add i64 %c, 1
  store i64 %c1, ptr @counter
  %i = and i64 %a, 3
  %p = getelementptr [4 x i64], ptr @table, i64 0, i64 %i
  %t = load i64, ptr %p
  %h = call i64 @helper(i64 %t)
  %wa = zext i64 %a to i128
  %hi = shl i128 %wa, 64
  %wb = zext i64 %b to i128
  %n = or i128 %hi, %wb
  %bo = or i64 %b, 1
  %d = zext i64 %bo to i128
  %q = udiv i128 %n, %d
  %q64 = trunc i128 %q to i64
  %fa = uitofp i64 %a to double
  %fs = fmul double %fa, 1.234567e+00
  %fi = fptoui double %fs to i64
  %s1 = add i64 %h, %q64
  %s2 = add i64 %s1, %fi
  %s3 = add i64 %s2, %c1
  ret i64 %s3
}
"""
F = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64)
INPUTS = [(0, 0), (1, 2), (7, 0xFFFFFFFFFFFFFFFF), (123456789, 987654321),
          (0xFFFFFFFFFFFFFFFF, 3), (1 << 40, (1 << 63) + 5)]


def _object() -> bytes:
    cg = Codegen(2)
    mod = cg.parse(IR)
    return cg.tm.emit_object(mod)


def _relocation_kinds(data: bytes) -> set[int]:
    shoff, = struct.unpack_from("<Q", data, 40)
    shnum, = struct.unpack_from("<H", data, 60)
    kinds = set()
    for i in range(shnum):
        _, kind, _, _, off, size, _, _, _, _ = struct.unpack_from("<IIQQQQIIQQ", data, shoff + 64 * i)
        if kind == 4:
            kinds |= {struct.unpack_from("<Q", data, off + 24 * k + 8)[0] & 0xFFFFFFFF
                      for k in range(size // 24)}
    return kinds


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_loaded_code_computes_what_mcjit_loaded_code_computes(native):
    data = _object()
    assert 1 in _relocation_kinds(data)       # absolute relocations are exercised
    mcjit = Codegen(2)       # (its engine, on a target machine it keeps alive)
    mcjit.engine.add_object_file(llvm.ObjectFileRef.from_data(data))
    mcjit.engine.finalize_object()
    reference = F(mcjit.engine.get_function_address("f"))
    ours = F(ObjectLoader(native).load(data)["f"])
    for a, b in INPUTS * 2:          # (twice: the counter in writable data goes on counting)
        assert ours(a, b) == reference(a, b)


def test_code_pages_are_not_writable_and_data_pages_are():
    loader = ObjectLoader()
    addr = loader.load(_object())["f"]
    base, size = loader.mappings[-1]
    with open("/proc/self/maps") as maps:
        spans = [line.split() for line in maps]
    perms = {}
    for span in spans:
        lo, hi = (int(x, 16) for x in span[0].split("-"))
        if lo < base + size and hi > base:
            perms[(lo, hi)] = span[1]
    code = [p for (lo, hi), p in perms.items() if lo <= addr < hi]
    assert code == ["r-xp"]
    assert "rw-p" in perms.values()           # the counter's page
    assert all("w" not in p or "x" not in p for p in perms.values())


def _relocation_entries(data) -> list[int]:
    """The file offsets of every RELA entry of an object."""
    shoff, = struct.unpack_from("<Q", data, 40)
    shnum, = struct.unpack_from("<H", data, 60)
    out = []
    for i in range(shnum):
        kind, off, size = (struct.unpack_from("<I", data, shoff + 64 * i + 4)[0],
                           *struct.unpack_from("<QQ", data, shoff + 64 * i + 24))
        if kind == 4:
            out += range(off, off + size // 24 * 24, 24)
    return out


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
@pytest.mark.parametrize("damage", ["truncated", "machine", "relocation", "not elf"])
def test_damaged_objects_are_refused_not_entered(damage, native):
    data = bytearray(_object())
    if damage == "truncated":
        data = data[:len(data) // 3]
    elif damage == "machine":
        data[18:20] = struct.pack("<H", 3)     # EM_386
    elif damage == "relocation":
        shoff, = struct.unpack_from("<Q", data, 40)
        shnum, = struct.unpack_from("<H", data, 60)
        for i in range(shnum):
            kind, off, size = (struct.unpack_from("<I", data, shoff + 64 * i + 4)[0],
                               *struct.unpack_from("<QQ", data, shoff + 64 * i + 24))
            if kind == 4 and size:
                struct.pack_into("<I", data, off + 8, 99)    # an unknown relocation type
                break
    else:
        data = bytearray(b"#!/bin/sh\n" + bytes(200))
    with pytest.raises(ObjectLoadError):
        ObjectLoader(native).load(bytes(data))


def _handler_chunks() -> list[bytes]:
    """The object code of the handler library chunks the test session prepared."""
    from translator.handlers import libraries, unpack
    out = []
    for folder in libraries():
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as f:
                chunk = unpack(f.read())
            if chunk is not None:
                out.append(chunk[1])
    return out


def _outcome(loader, data: bytes, base: int):
    try:
        return loader.image(data, base)
    except ObjectLoadError as e:
        return str(e)


def test_native_relocation_makes_the_images_the_python_path_makes():
    """native.c's jb_relocate against objload's Python relocation: the same pages at the same
    address, for this test's object, every handler library chunk (some 4,000 relocations
    each), and damaged relocations (offsets past their section, 32-bit values out of range,
    symbols past the table, unknown types), which both refuse with the same error."""
    from translator import native
    assert native.library() is not None, "the native helpers are not built: run `make native`"
    base = 0x7F1234560000
    objects = [_object(), *_handler_chunks()]
    assert len(objects) >= 3
    for data in objects:
        image = _outcome(ObjectLoader(True), data, base)
        assert not isinstance(image, str), image
        assert image == _outcome(ObjectLoader(False), data, base)
    data = objects[0]
    entries = _relocation_entries(data)
    assert entries
    damaged = []
    for at in entries[:6]:
        for field, value in ((0, 1 << 40), (8, 99), (8, 1 | 1 << 50), (16, 1 << 40),
                             (8, 2 | (struct.unpack_from("<Q", data, at + 8)[0] >> 32) << 32),
                             (8, 10 | (struct.unpack_from("<Q", data, at + 8)[0] >> 32) << 32)):
            bad = bytearray(data)
            struct.pack_into("<Q", bad, at + field, value)
            damaged.append(bytes(bad))
    refused = 0
    for bad in damaged:
        ours = _outcome(ObjectLoader(True), bad, base)
        assert ours == _outcome(ObjectLoader(False), bad, base)
        refused += isinstance(ours, str)
    assert refused >= len(damaged) // 2


def _probed_run(guest: str, args: list[str], cache) -> subprocess.CompletedProcess:
    """`jitbt run --stats [args] guest` in this Python with `cache` as the cache folder; its
    stderr ends with whether llvmlite.binding was imported. Checks the output is native's."""
    prog = os.path.join(ROOT, "guests", "build", guest)
    native = subprocess.run([prog], capture_output=True, timeout=60).stdout
    probe = ("import sys, runtime.cli as c\n"
             "status = c.main(['run', '--stats', *%r, %r])\n"
             "sys.stdout.flush()\n"
             "sys.stderr.write('llvm imported: %%s\\n' %% ('llvmlite.binding' in sys.modules))\n"
             "sys.exit(status)\n" % (args, prog))
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, env=env, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == native
    return r


def test_a_warm_run_loads_its_code_without_llvm(tmp_path):
    """Once the persistent cache holds everything a static hello world needs, a run loads it
    all with jitbt's loader and never imports llvmlite's LLVM library; its output is the
    native program's."""
    for attempt in range(8):      # the first runs fill the cache (handlers, regions, records)
        r = _probed_run("hello", [], tmp_path)
        # (a handler sent to the second thread and dropped at the exit started LLVM too)
        if b"0 misses, 0 stored" in r.stderr and b"built 0 this run" in r.stderr \
                and b"not built by the exit" not in r.stderr:
            break
    else:
        pytest.fail("the cache never held everything hello world needs:\n" + r.stderr.decode())
    assert b"llvm imported: False" in r.stderr, r.stderr.decode()


def test_objects_it_declines_are_loaded_by_mcjit():
    """Position-independent code reads a global of the process through the GOT, a relocation
    the loader leaves to MCJIT: Codegen.load_object still returns working code."""
    cg = Codegen(2)
    assert cg.tm is not None                        # (LLVM started)
    target = llvm.Target.from_default_triple()
    pic = target.create_target_machine(opt=2, reloc="pic", codemodel="small")
    ir = "@environ = external global ptr\n" \
         "define ptr @g() {\n  %p = load ptr, ptr @environ\n  ret ptr %p\n}\n"
    data = pic.emit_object(cg.parse(ir))
    assert _relocation_kinds(data) & {9, 41, 42}    # GOTPCREL, GOTPCRELX, REX_GOTPCRELX
    with pytest.raises(ObjectLoadError):
        ObjectLoader().load(data)
    g = ctypes.CFUNCTYPE(ctypes.c_void_p)(cg.load_object("pic", data, ["g"])["g"])
    assert g() == ctypes.c_void_p.in_dll(ctypes.CDLL(None), "environ").value


@pytest.mark.parametrize("opt,whole", [(0, False), (2, False), (2, True)])
def test_object_code_made_without_llvmlite_binding_computes_what_mcjit_computes(opt, whole):
    """translator/llvmraw.py calls llvmlite's library without its Python layer: the object
    code it makes (optimised at -O2 by the translations' function pipeline or by LLVM's whole
    default pipeline, or not at all) computes what MCJIT's code of the same IR computes."""
    from translator import llvmraw
    tm = llvmraw.TargetMachine(opt)
    data = llvmraw.emit_object(IR, tm, llvmraw.PassBuilder(tm, opt, whole) if opt else None)
    mcjit = Codegen(2)          # (its engine holds the reference's code)
    reference = F(mcjit.compile(IR, ["f"])["f"])
    ours = F(ObjectLoader().load(data)["f"])
    for a, b in INPUTS * 2:
        assert ours(a, b) == reference(a, b)


def test_the_function_pipeline_inlines_always_inline_helpers_and_optimises():
    """The translations' pipeline (llvmraw.PassBuilder) first inlines the always-inline
    helpers (the lifter's memory check is one) and drops them, then simplifies the function:
    a loop kept in an alloca becomes a closed form without a stack frame, and the helper is
    gone from the object. The result still computes what the unoptimised code computes."""
    from translator import llvmraw
    ir = ("define internal i64 @twice(i64 %x) alwaysinline {\n  %y = shl i64 %x, 1\n"
          "  ret i64 %y\n}\n"
          "define i64 @f(i64 %n) {\nentry:\n  %acc = alloca i64\n  store i64 0, ptr %acc\n"
          "  br label %loop\nloop:\n  %i = phi i64 [0, %entry], [%i1, %loop]\n"
          "  %a = load i64, ptr %acc\n  %t = call i64 @twice(i64 %i)\n"
          "  %a1 = add i64 %a, %t\n  store i64 %a1, ptr %acc\n  %i1 = add i64 %i, 1\n"
          "  %done = icmp uge i64 %i1, %n\n  br i1 %done, label %out, label %loop\n"
          "out:\n  %r = load i64, ptr %acc\n  ret i64 %r\n}\n")
    plain = llvmraw.emit_object(ir, llvmraw.TargetMachine(0), None)
    tm = llvmraw.TargetMachine(2)
    optimised = llvmraw.emit_object(ir, tm, llvmraw.PassBuilder(tm, 2))
    assert b"twice" in plain and b"twice" not in optimised
    assert len(optimised) < len(plain)
    f0 = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)(ObjectLoader().load(plain)["f"])
    f2 = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)(ObjectLoader().load(optimised)["f"])
    for n in (1, 2, 7, 1000, 123457):
        assert f2(n) == f0(n) == sum(2 * i for i in range(n))


def test_ir_that_does_not_parse_or_verify_is_an_error_not_a_crash():
    from translator import llvmraw
    tm = llvmraw.TargetMachine(2)
    pb = llvmraw.PassBuilder(tm, 2)
    with pytest.raises(RuntimeError, match="parsing error"):
        llvmraw.emit_object("define i64 @f(i64 %x) {\n  ret i32 %x\n}\n", tm, pb)
    # (parses, but a value is used before it is defined)
    with pytest.raises(RuntimeError, match="dominate"):
        llvmraw.emit_object("define i64 @f(i64 %x) {\n  %a = add i64 %b, 1\n"
                            "  %b = add i64 %x, 1\n  ret i64 %a\n}\n", tm, pb)
    data = llvmraw.emit_object(IR, tm, pb)          # and it goes on compiling
    mcjit = Codegen(2)
    assert F(ObjectLoader().load(data)["f"])(1, 2) == F(mcjit.compile(IR, ["f"])["f"])(1, 2)


def test_a_cold_run_compiles_without_llvmlite_binding(tmp_path):
    """A run with nothing stored (not even the dispatcher or the interpreter's handlers: a
    cache folder of its own) compiles the dispatcher, handlers, cold blocks and hot regions on
    the background thread without importing llvmlite.binding (its Python layer cost a cold
    run 30-45 ms); its output is the native program's."""
    r = _probed_run("hotloops-glibc", ["--no-cache"], tmp_path)
    err = r.stderr.decode()
    stats = {line[:49].strip(): line[49:].split() for line in err.splitlines()
             if line.startswith("  ")}
    assert stats["dispatcher"] == ["compiled"], err
    built = " ".join(stats["handler library"]).split("built ")[1]
    assert int(built.split()[0]) > 0, err                           # handlers built this run
    assert int(stats["LLVM modules compiled"][0]) > 0, err     # (blocks without a handler yet)
    assert int(stats["hot regions (optimising tier)"][0]) > 0, err
    assert "llvm imported: False" in err, err


def test_llvm_library_opened_outside_ctypes_dlopen(tmp_path):
    """llvmraw opens llvmlite's library with dlopen called as a foreign function (ctypes.CDLL
    holds the GIL while it opens a library, and this one takes 12-40 ms to open): the handle is
    the library llvmlite.binding uses, its functions work, and a missing file is an OSError that
    names it."""
    from translator import llvmraw
    path = llvmraw._library_path()
    lib = llvmraw._open(path)
    mine = ctypes.cast(lib.LLVMPY_GetHostCPUName, ctypes.c_void_p).value
    assert mine == ctypes.cast(llvm.ffi.lib._lib.LLVMPY_GetHostCPUName, ctypes.c_void_p).value
    name = ctypes.c_char_p()
    lib.LLVMPY_GetHostCPUName.argtypes = (ctypes.POINTER(ctypes.c_char_p),)
    lib.LLVMPY_GetHostCPUName(ctypes.byref(name))
    assert name.value == llvm.get_host_cpu_name().encode()
    with pytest.raises(OSError, match="no-such-library"):
        llvmraw._open(str(tmp_path / "no-such-library.so"))
