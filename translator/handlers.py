"""The interpreter's handler library: one compiled handler per instruction shape, kept on disk.

Handlers (translator/interp.py) depend only on the instruction's shape and on jitbt itself,
never on the guest, so they are compiled once and kept, like the helpers a compiler ships with:
in ``$XDG_CACHE_HOME/jitbt/handlers/<key>/``, where the key hashes jitbt's sources, the CPU
model, LLVM's version and the flag model. A *chunk* is one file: an index (the shape keys, the
instruction each was lifted from, and the shapes that need a handler per encoding) and the
object code of its handlers, which exports one symbol, the table of their addresses. Files are
written whole under a temporary name and carry a BLAKE2b digest of their contents (the store's,
persist.new_hash: hashlib's SHA-256 would load OpenSSL, 10 ms of a start), so runs that share
the folder never load a torn or corrupt file (it is removed and its handlers are built again).

A shape the library lacks is *wanted*: the block that needs it is compiled instead (the tier
after the interpreter), and the wanted handlers are compiled on a second thread into a new
chunk, which this run loads when it is ready and later runs find on disk. ``jitbt prepare``
builds every shape of the conformance forms and of the programs it is given, each memory
operand in every addressing form (``address_variants``), as one chunk (and folds the chunks
there were into it). (A cold run that met a missing shape paid 20-60 ms: crc32's fill loop,
sort's and hashtable's shifts, matmul's [rcx + rax].)::

    lib = HandlerLibrary(codegen, knobs)
    lib.handler(insn, lib.key_of(insn))   # the handler's address, or None (then wanted)
    lib.build()               # compile what is wanted now, on this thread
    lib.poll()                # load chunks the second thread finished
"""
from __future__ import annotations

import ctypes
import os
import struct
import time
from .plain import replace

from . import interp
from .codegen import CompileError
from .knobs import Knobs
from .persist import decode, default_folder, encode, module_key, new_hash, write_file

MAGIC = b"JITBTHL2"
_LEN = struct.Struct("<I")


def library_key(knobs: Knobs) -> str:
    """What the handlers' code depends on: jitbt's sources and version, the CPU model, LLVM,
    and the flag model (exact at datapath, else precise): one library serves block, hle,
    instruction and cycle, another datapath."""
    from runtime import cpu

    from . import SOURCE_DIGEST, VERSION
    return module_key(["handlers", _flags(knobs), knobs.memory, "counting"], VERSION,
                      (SOURCE_DIGEST, cpu.signature()))


def _flags(knobs: Knobs) -> str:
    return "exact" if knobs.flags == "exact" else "precise"


def libraries(cache: str | None = None) -> list[str]:
    """The handler library folders in the cache folder (one per jitbt and CPU model)."""
    root = os.path.join(cache or default_folder(), "handlers")
    try:
        return sorted(e.path for e in os.scandir(root) if e.is_dir())
    except OSError:
        return []


def handler_knobs(knobs: Knobs) -> Knobs:
    """The knobs handlers are lifted with: one instruction, every defined flag (and at the
    exact flag model the undefined ones as the host sets them), no chaining, and counting:
    every handler adds its instruction to the retired count and its modelled cycles
    (translator/costs.py) when it retires, which the levels that count read and the others
    ignore (two additions an instruction)."""
    return replace(knobs, flags=_flags(knobs), unit="block", chain="off", count="on",
                   clock="host", trace=False, routines="off")


def pack(index: dict, obj: bytes) -> bytes:
    head = encode(index)
    payload = _LEN.pack(len(head)) + head + obj
    return MAGIC + new_hash(payload).digest() + payload


def unpack(data: bytes) -> tuple[dict, bytes] | None:
    """(index, object code) of a chunk file, or None when it is not a whole, intact one."""
    payload = data[len(MAGIC) + 32:]
    if not data.startswith(MAGIC) or new_hash(payload).digest() != \
            data[len(MAGIC):len(MAGIC) + 32] or len(payload) < _LEN.size:
        return None
    (n,) = _LEN.unpack_from(payload)
    try:
        return decode(payload[_LEN.size:_LEN.size + n]), payload[_LEN.size + n:]
    except ValueError:
        return None


class HandlerLibrary:
    def __init__(self, codegen, knobs: Knobs, folder: str | None = None,
                 threaded: bool = False, save: bool = True):
        """`codegen` loads the chunks (translator/codegen.py, the optimising tier's: handlers
        are compiled at -O2); `threaded`: build wanted handlers on a second thread (a
        Background, translator/background.py), else on this one when they are submitted;
        `save`: keep what is built on disk (not for `jitbt run --no-cache`, which leaves
        nothing behind: it uses the library as it is)."""
        self.codegen = codegen
        self.knobs = handler_knobs(knobs)
        self._lifter = None
        self.key = library_key(knobs)
        self.folder = os.path.join(folder or os.path.join(default_folder(), "handlers"),
                                   self.key[:24])
        self.threaded = threaded
        self.saving = save
        self.background = None
        self.passes = None                    # this thread's whole-module -O2 (llvmraw)
        self.addr: dict[str, int] = {}        # shape key -> handler address
        self.static: set[str] = set()         # shape keys whose handlers are per encoding
        self.entries: list = []               # [key, bytes, address] of each handler loaded
        self.wanted: dict[str, tuple] = {}    # key -> (insn, static), not built yet
        self.building: set[str] = set()       # ... submitted to the second thread
        self.broken: set[str] = set()         # keys whose handlers failed to compile
        self.chunks: list[str] = []           # chunk files loaded
        self.corrupt = 0                      # chunk files found damaged (removed)
        self.seconds_load = 0.0
        self.seconds_build = 0.0              # this thread's lifting and compiling
        self.built = 0                        # handlers compiled by this process
        self.unbuilt = 0                      # sent to the second thread, not built by the exit
        self._jobs: dict[str, tuple] = {}     # table -> (index, keys) on the second thread
        self.loaded = False

    # ---- lookup ---------------------------------------------------------------------------------
    @property
    def lifter(self):
        """The lifter handlers are lifted with (made, and the lifter imported, when a handler
        is first built: a run whose library has every handler it needs lifts nothing)."""
        if self._lifter is None:
            from .lifter import Lifter
            self._lifter = Lifter(self.knobs)
        return self._lifter

    def key_of(self, insn, key: str | None = None) -> str:
        """The key of the handler of `insn`: its shape's (`key`: ``shape_key(insn, True)``,
        when the caller has it), or its encoding's when the shape needs handlers per
        encoding."""
        key = key or interp.shape_key(insn, known=True)
        if key in self.static:
            return interp.static_key(insn)
        return key if key in self.addr else interp.shape_key(insn)

    def handler(self, insn, key: str) -> int | None:
        """The address of the handler `key` (key_of's) of `insn`, or None when the library
        lacks it (it is wanted then, unless it cannot be built)."""
        h = self.addr.get(key)
        if h is None and key not in self.broken and key not in self.building:
            self.wanted.setdefault(key, (insn, interp.is_static_key(key)))
        return h

    def special(self, kind: str) -> int | None:
        h = self.addr.get(kind)
        if h is None and kind not in self.building:
            self.wanted.setdefault(kind, (None, False))
        return h

    # ---- loading ----------------------------------------------------------------------------------
    def load(self) -> None:
        """Load every chunk on disk (once)."""
        if self.loaded:
            return
        self.loaded = True
        t0 = time.perf_counter()
        try:
            names = sorted(os.listdir(self.folder))
        except OSError:
            names = []
        for name in names:
            if name.endswith(".lib"):
                self._load_file(os.path.join(self.folder, name))
        self.seconds_load += time.perf_counter() - t0

    def _load_file(self, path: str) -> bool:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return False
        chunk = unpack(data)
        try:
            if chunk is None:
                raise CompileError("damaged")
            self._add(*chunk)
        except (CompileError, RuntimeError, KeyError, TypeError, ValueError):
            self.corrupt += 1           # torn, damaged or not ours: removed, built again
            try:
                os.unlink(path)
            except OSError:
                pass
            return False
        self.chunks.append(path)
        return True

    def _add(self, index: dict, obj: bytes) -> None:
        """Load a chunk's object code and enter its handlers."""
        table = index["table"]
        entries = index["handlers"]
        addrs = self.codegen.load_object(f"handlers {table}", obj, [table])
        if addrs is None:
            raise CompileError(f"handler chunk {table}: table missing from its object code")
        slots = (ctypes.c_uint64 * len(entries)).from_address(addrs[table])
        keys = [e[0] for e in entries]
        self.addr.update(zip(keys, slots))
        self.entries += entries
        if self.wanted:
            for key in keys:
                self.wanted.pop(key, None)
        self.static.update(index["static"])

    @property
    def known(self) -> dict[str, tuple]:
        """Shape key -> (bytes, address) of the instruction its handler was lifted from."""
        return {key: (raw, address) for key, raw, address in self.entries}

    # ---- building ---------------------------------------------------------------------------------
    def _texts(self, wanted: dict) -> tuple[list, list]:
        """Lift wanted handlers: (handler texts, their index entries). Shapes found to need
        handlers per encoding join ``static``, and their encodings' handlers are lifted."""
        from . import handler_ir
        texts, entries = [], []
        todo = list(wanted.items())
        while todo:
            key, (insn, is_static) = todo.pop()
            name = f"h{len(texts)}"
            if insn is None:
                texts.append((handler_ir.special_text(key, name), set()))
                entries.append([key, "", 0])
                continue
            try:
                texts.append(handler_ir.handler_text(self.lifter, insn, is_static, name))
            except TypeError:
                if not is_static:
                    # The semantic needs numbers of the encoding: handlers per encoding.
                    self.static.add(key)
                    skey = interp.static_key(insn)
                    if skey not in self.addr:
                        todo.append((skey, (insn, True)))
                    continue
                self.broken.add(key)    # (its blocks are compiled; the JIT reports bugs)
                continue
            except Exception:           # noqa: BLE001 - a semantic failing for this shape
                self.broken.add(key)
                continue
            entries.append([key, insn.raw.hex(), insn.address])
        return texts, entries

    def module(self, wanted: dict) -> tuple[str, dict]:
        """The IR of a chunk of the `wanted` handlers, and its index (without object code)."""
        from . import handler_ir
        texts, entries = self._texts(wanted)
        table = f"jitbt_handlers_{os.urandom(8).hex()}"
        return (handler_ir.library_text(texts, table),
                {"table": table, "handlers": entries, "static": sorted(self.static)})

    def _passes(self, tm):
        """The pass builder of chunks compiled on this thread: LLVM's whole default -O2
        pipeline, not the translations' function pipeline (llvmraw.PassBuilder)."""
        from . import llvmraw
        if self.passes is None:
            self.passes = llvmraw.PassBuilder(tm, 2, whole=True)
        return self.passes

    def build(self, wanted: dict | None = None, parts: int = 1) -> int:
        """Compile the wanted handlers now into chunks that are loaded and saved (`parts` of
        them at once, all but one on other threads); returns how many were built."""
        from . import llvmraw
        from .background import Background
        wanted = dict(self.wanted if wanted is None else wanted)
        for key in wanted:
            self.wanted.pop(key, None)
        if not wanted:
            return 0
        t0 = time.perf_counter()
        items = list(wanted.items())
        modules = [self.module(dict(items[i::parts])) for i in range(parts)]
        workers = []
        for text, index in modules[1:]:
            workers.append(Background(2, whole=True))
            workers[-1].submit(index["table"], text)
        cg = self.codegen
        results = []
        try:
            text, index = modules[0]
            tm, _ = cg.raw
            results.append((index, llvmraw.emit_object(text, tm, self._passes(tm))))
        except RuntimeError as e:
            results.append((index, e))
        for bg, (_, index) in zip(workers, modules[1:]):
            bg.wait()
            ((_, obj, error, _),) = bg.take()
            bg.close()
            results.append((index, obj if error is None else RuntimeError(error)))
        for index, obj in results:
            if isinstance(obj, Exception):
                self.broken.update(k for k, _, _ in index["handlers"])
                raise CompileError(f"handlers: {obj}")
            self._finish(index, obj)
        self.seconds_build += time.perf_counter() - t0
        return sum(len(index["handlers"]) for index, _ in results)

    def submit(self) -> None:
        """Send the wanted handlers to the second thread (without one: build them now)."""
        if not self.wanted:
            return
        if not self.threaded:
            self.build()
            return
        if self.background is None:
            from .background import Background
            self.background = Background(2, whole=True)
        if self._jobs:
            return             # one chunk at a time: the next takes what is wanted meanwhile
        t0 = time.perf_counter()
        wanted, self.wanted = self.wanted, {}
        text, index = self.module(wanted)
        keys = set(wanted) | {k for k, _, _ in index["handlers"]}
        self.building.update(keys)
        self._jobs[index["table"]] = (index, keys)
        self.background.submit(index["table"], text)
        self.seconds_build += time.perf_counter() - t0

    def poll(self) -> bool:
        """Load the chunks the second thread has finished; True if there were any."""
        bg = self.background
        if bg is None or not bg.ready():
            return False
        for table, obj, error, _ in bg.take():
            index, keys = self._jobs.pop(table)
            self.building.difference_update(keys)
            if error is not None or obj is None:
                self.broken.update(keys)
                continue
            self._finish(index, obj)
        self.submit()
        return True

    def close(self) -> None:
        """End the second thread: when the library is saved, after it has built every chunk
        sent to it, which are saved for later runs."""
        if self.background is None:
            return
        # A library that keeps what it builds waits for every chunk it sent, so that the next
        # run has them (a short guest's run used to end while the thread was still starting
        # LLVM, dropping the queued chunk, and so did every run after it); one that keeps
        # nothing (jitbt run --no-cache) does not wait even for the chunk in flight.
        bg = self.background
        if self.saving:
            bg.wait()
        for table, obj, error, _ in bg.close(wait=self.saving):
            index, _ = self._jobs.pop(table, (None, None))
            if index is not None and obj is not None and error is None:
                self.built += len(index["handlers"])     # (built this run, used by the next)
                self.save(index, obj)
        # Jobs the thread had not started are dropped: the next run wants them again.
        self.unbuilt += sum(len(index["handlers"]) for index, _ in self._jobs.values())
        self._jobs.clear()
        self.background = None

    def _finish(self, index: dict, obj: bytes) -> None:
        self._add(index, obj)
        self.built += len(index["handlers"])
        self.save(index, obj)

    def save(self, index: dict, obj: bytes) -> str | None:
        if not self.saving:
            return None
        try:
            path = os.path.join(self.folder, f"{index['table']}.lib")
            write_file(path, pack(index, obj))
            self.chunks.append(path)
            return path
        except OSError:
            return None       # a library that cannot be written is only a slower run


# ---- prepare: the whole library as one chunk ------------------------------------------------------
def sweep(path: str) -> list:
    """Every instruction of a program's executable sections, decoded from the start of each
    and on past bytes that do not decode (data in text), as Insns. Raises OSError and
    elftools' errors for a file that is not a readable ELF."""
    from elftools.elf.elffile import ELFFile

    from .decoder import disassemble
    out = []
    with open(path, "rb") as f:
        for section in ELFFile(f).iter_sections():
            if not section["sh_flags"] & 4 or section["sh_type"] != "SHT_PROGBITS":
                continue
            data, base, off = section.data(), section["sh_addr"], 0
            while off < len(data):
                insns = disassemble(data[off:off + 4096 + 15], base + off)
                stop = base + off + 4096
                kept = [i for i in insns if i.address < stop]
                out += kept
                off = (kept[-1].next - base) if kept else off + 1
    return out


def form_insns() -> list:
    """The instructions of every conformance form (translator/conformance): all the shapes the
    semantics implement, in the forms the tests prove against the host CPU."""
    from .conformance import report
    from .conformance.hostcpu import assemble
    from .decoder import disassemble
    out = []
    for module, case in report.selected():
        try:
            code = assemble(module.form_of(case).text, 0x10000)
        except Exception:        # noqa: BLE001 - a form keystone cannot assemble: skipped
            continue
        out += disassemble(code, 0x10000)
    return out


def prepare(libraries, programs=()) -> list[tuple[int, float]]:
    """For each library, build one chunk holding every shape of the conformance forms, of
    `programs` and of the chunks on disk, and replace those chunks by it (the programs are
    decoded once for all). Returns (handlers, seconds) of each."""
    from .decoder import disassemble
    t0 = time.perf_counter()
    common = form_insns()
    for path in programs:
        common += sweep(path)
    seconds, out = time.perf_counter() - t0, []
    for library in libraries:
        t1 = time.perf_counter()
        library.load()
        insns = list(common)
        for key, (raw, address) in library.known.items():
            insns += disassemble(bytes.fromhex(raw), address)[:1]
        n = _rebuild(library, insns)
        out.append((n, time.perf_counter() - t1 + seconds / len(libraries)))
    return out


# The addressing forms a memory operand's shape may take (interp._operand: base, index, both,
# rip-relative), as (base, index, scale) of an Operand standing for each. (An absolute address,
# neither base nor index, is rare in x86-64 code: left to the programs' own.)
ADDRESSING = ((0, None, 1), (0, 1, 4), (None, 1, 8), ("rip", None, 1))


def address_variants(insn) -> list:
    """`insn` with its memory operand in each other addressing form: a handler of a shape does
    not depend on the operand's numbers, only on its form, and compilers pick the form a
    loop's addresses need (gcc addressed one matmul array [rcx + rax] where every program the
    library was prepared from had [rax]), so the library covers them all. String instructions
    (implicit [rsi] and [rdi]) and two memory operands are left as they are."""
    mems = [i for i, op in enumerate(insn.ops) if op.kind == "mem"]
    m = insn.mnemonic
    if len(mems) != 1 or insn.rep or m[:-1] in STRING_OPS and m[-1] in "bwdq" \
            and not any(op.kind == "xmm" for op in insn.ops):       # (not SSE's movsd, cmpsd)
        return []
    at = mems[0]
    op = insn.ops[at]
    out = []
    for base, index, scale in ADDRESSING:
        if _form(base, index) == _form(op.base, op.index):
            continue
        ops = list(insn.ops)
        ops[at] = replace(op, base=base, index=index, scale=scale)
        out.append(replace(insn, ops=ops))
    return out


def _form(base, index) -> tuple:
    return (base if base in (None, "rip") else "base", index is None)


STRING_OPS = {"movs", "stos", "lods", "scas", "cmps", "ins", "outs", "xlat"}


def _rebuild(library: HandlerLibrary, insns) -> int:
    from . import handler_ir
    shapes: dict[str, dict] = {}          # shape key -> {encoding key: an instruction}
    for insn in insns:
        shapes.setdefault(interp.shape_key(insn), {}).setdefault(interp.static_key(insn), insn)
    wanted: dict[str, tuple] = {k: (None, False) for k in (interp.END, interp.FETCH_FAULT)}
    variants = []
    for key, encodings in shapes.items():
        first = next(iter(encodings.values()))
        if key not in library.static:
            try:                            # (lifting is cheap: about 60 us a handler)
                handler_ir.handler_text(library.lifter, first, False, "probe")
            except TypeError:
                library.static.add(key)
            except Exception:               # noqa: BLE001 - built (and set aside) below
                pass
        if key in library.static:
            wanted.update((k, (i, True)) for k, i in encodings.items())
        else:
            wanted[key] = (first, False)
            variants += address_variants(first)
    for insn in variants:       # (a form no semantic takes, or one lifted per encoding: left)
        key = interp.shape_key(insn)
        if key in wanted or key in library.static:
            continue
        try:
            handler_ir.handler_text(library.lifter, insn, False, "probe")
        except Exception:                   # noqa: BLE001
            continue
        wanted[key] = (insn, False)
    old = list(library.chunks)
    library.addr.clear()
    n = library.build(wanted, parts=2)
    for path in old:
        try:
            os.unlink(path)
        except OSError:
            pass
    library.chunks = [p for p in library.chunks if p not in old]
    return n
