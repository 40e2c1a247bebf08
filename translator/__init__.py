"""jitbt's translator: guest machine code in, host code out.

decoder (capstone) -> blocks -> lifter + semantics (LLVM IR text) -> codegen (llvmlite MCJIT),
with sensitive instructions classified by the rewrite rules and results kept in the block cache.

Compilation is tiered: a region is first compiled without optimisation (cheap to compile), and
the blocks the dispatcher finds hot are compiled again by the optimising tier (``promote``)::

    from translator import Translator
    tr = Translator(fetch)                 # fetch(addr, n) -> executable guest bytes
    t = tr.translate(0x401000)             # -> cache.Translation (host function address in t.host)
"""
from __future__ import annotations

import ctypes
import itertools
import os
import sys
import time
from .plain import dataclass, field

from .cache import BlockCache, Translation
from .codegen import Codegen, CompileError
from .interp import interpret
from .knobs import Knobs
from .persist import decode, encode, module_key, new_hash
from .state import PAGE_SHIFT

VERSION = "0.1.0"
ENTER_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.c_void_p)
WAIT_LIMIT = 2          # times a hot block waits for a region it leads to to be compiled
COLD_SPLIT = 6          # blocks from which a cold region is compiled as two halves at once
GROW_LIMIT = 4          # times a hot region is recompiled to take in blocks it left to
SHAPE = ".shape"        # the suffix of region shapes in the persistent store
# JITBT_LOG_REGIONS=1: every hot region formed is described on stderr (seconds since start,
# head, blocks, why), and so is each background compile's end and length.
LOG_REGIONS = bool(os.environ.get("JITBT_LOG_REGIONS"))
_T0 = time.perf_counter()


def _log_region(why: str, blocks, left_out=()) -> None:
    sys.stderr.write(f"jitbt: {time.perf_counter() - _T0:6.3f} region {blocks[0].start:#x} "
                     f"{why}: {len(blocks)} blocks " + " ".join(f"{b.start:x}" for b in blocks)
                     + (f"; left out (compiling): {' '.join(f'{a:x}' for a in left_out)}"
                        if left_out else "") + "\n")


def _source_digest() -> str:
    """A digest of the translator's own sources and the CPU model: part of every persistent-cache
    key, so an object compiled by other semantics is never reused, whatever the version says."""
    here = os.path.dirname(os.path.realpath(__file__))
    paths = sorted(os.path.join(folder, name) for folder, _, names in os.walk(here)
                   for name in names if name.endswith(".py"))
    h = new_hash()
    for path in paths + [os.path.join(os.path.dirname(here), "runtime", "cpu.py")]:
        h.update(os.path.basename(path).encode())
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


SOURCE_DIGEST = _source_digest()


@dataclass
class Stats:
    decoded: int = 0          # blocks decoded (a warm run loads regions without decoding)
    decoded_native: int = 0   # ... of which by the native decoder (translator/fastdec.py)
    blocks: int = 0
    insns: int = 0
    modules: int = 0
    regions: int = 0
    regions_dropped: int = 0  # compiled in the background, but their code changed meanwhile
    regions_grown: int = 0    # recompiled with blocks that ran first after they were formed
    regions_early: int = 0    # stored by an earlier run, loaded when their head warmed up
    regions_superseded: int = 0   # dropped before compiling: a region queued after holds them
    interp_blocks: int = 0    # blocks the interpreter ran first (baseline=interp)
    interp_insns: int = 0
    warmed: int = 0           # of those, blocks compiled (warm_up)
    stored_later: int = 0     # ... and blocks compiled for the store on a thread instead
    warm_insns: int = 0
    seconds_decode: float = 0.0
    seconds_form: float = 0.0      # forming hot regions (decoding their blocks again)
    seconds_records: float = 0.0   # making interpreter records
    seconds_ir: float = 0.0
    seconds_hot_ir: float = 0.0    # of which the optimising tier's (hot regions, hot blocks)
    extra: dict = field(default_factory=dict)


def _steps(block) -> list[int]:
    """Where control goes from `block` within its function: its successors, but over a call
    to the instruction after it (the callee's blocks are another function's)."""
    from .decoder import CS_GRP_CALL
    last = block.insns[-1] if block.insns else None
    if last is not None and CS_GRP_CALL in last.groups:
        return [last.next]
    return block.successors()


def _called(blocks, inside) -> set[int]:
    """The blocks of `blocks` that run inside a call made by a block of `inside` which returns
    into `inside`: reachable from such a call's target (through further calls, whose blocks run
    deeper inside it; a PLT stub's jmp reaches the blocks that no block branches to, as in the
    region's IR: lifter.region_edges)."""
    from .lifter import slot_sites
    slots = slot_sites(blocks)
    succ = {b.start: slots if b.jump_slot is not None else b.successors() for b in blocks}
    todo = [s for b in blocks if b.start in inside and b.insns
            and b.insns[-1].mnemonic == "call" and b.insns[-1].next in inside
            for s in b.successors() if s != b.insns[-1].next]
    seen: set[int] = set()
    while todo:
        a = todo.pop()
        if a in succ and a not in seen:
            seen.add(a)
            todo.extend(succ[a])
    return seen


class Translator:
    def __init__(self, fetch, knobs: Knobs | None = None, cache_size: int = 1 << 16,
                 tiered: bool = True, store=None):
        self.fetch = fetch
        self.knobs = knobs = knobs or Knobs()
        self._decoder = None
        self._native = False                   # translator/fastdec.py's decoder (None: none)
        self._lifter = None
        self.store = store                            # persist.ObjectStore, or None
        self.codegen = Codegen(knobs.opt, store)      # the optimising tier
        self.tiered = tiered and knobs.opt > 0
        self.cold = Codegen(0, store) if self.tiered else self.codegen
        self.region_blocks = knobs.region
        self.max_insns = 1 if knobs.unit == "insn" else None
        # Hot code is recompiled by the optimising tier: as regions of up to 128 blocks when the
        # unit is the region, else alone. -O2 time grows faster than linearly with size, but 16
        # cut loop nests such as the one gcc makes of a doubly recursive function into regions
        # that chained to each other (recursion ran 2x slower than with one region), and 64 cut
        # strings' main loop (71 blocks with strtok's, strstr's and memcmp's): grown to take in
        # what ran later, it left out half of strstr's loop, which it then entered at four
        # blocks, each heading a region of that loop (292 region blocks compiled, 241 now; no
        # other workload's region reaches 64).
        self.hot_region_blocks = 128 if knobs.unit == "region" else 1
        self.cache = BlockCache(cache_size, key=knobs.key())
        self.stats = Stats()
        self.hot_blocks = 0
        self._serial = itertools.count(1)
        self.written_pages: set[int] = set()   # pages the guest has stored code into
        # Routine replacement (knob routines=libc, translator/hle.py): guest address -> routine
        # number, filled by the runtime from the program's symbols (add_routines); the code
        # range and digest of each; and the addresses whose routine declined a call.
        self.routines: dict[int, int] = {}
        self.routine_spans: dict[int, tuple[int, str]] = {}
        self.declined: set[int] = set()
        self._enter = None
        self.background = None                 # background.Background, once a region is sent
        self.cold_worker = None                # another, for halves of cold regions
        # ... and one for the cold modules of warmed-up blocks, compiled for the store alone
        # (warm_up), with the keys sent to it.
        self.warm_worker = None
        self.warm_keys: set[str] = set()
        self.sent: set[int] = set()            # ... and the blocks those hold
        self.warm_later = (store is not None and self.tiered and knobs.warmup == 0
                           and knobs.background == "on")
        self.pending: dict[str, tuple] = {}    # key -> (name, blocks) being compiled there
        self.pending_heads: set[int] = set()   # their first blocks (left out of other
                                               # regions until they are in)
        # on_hold(address, True): a block is in a region being compiled there; False: the region
        # is in (the runtime's dispatcher keeps such blocks from turning hot on their own).
        self.on_hold = lambda address, held: None
        # on_compiled(): a region is compiled in the background (called on that thread): the
        # runtime has the guest come back soon, so that it is entered (see finished).
        self.on_compiled = None
        # runs(address): how often the block there has run (the dispatcher's count), or None.
        self.runs = None
        # peek(address): the 8-byte pointer the guest may read there now, or None.
        self.peek = lambda address: None
        # Region growth: a hot region takes in the blocks that had run when its head turned
        # hot. A block it leaves to that turns hot later (a path that had not run yet, the
        # rest of a loop nest), or one of its own blocks that turns hot as cold code reached
        # from such an exit runs back into it, is taken in by recompiling that region from the
        # same head with what has run since, rather than heading a region of its own that the
        # two would chain between.
        self.exits: dict[int, int] = {}        # block of or after a hot region -> its head
        self.grown: dict[int, int] = {}        # region head -> times it was grown
        self.waited: dict[int, int] = {}       # hot block -> times it waited (see promote)
        self.waiters: dict[int, set] = {}      # pending region head -> blocks waiting for it
        # A region formed while one it leads to was still compiling leaves that one out; once
        # it is in, the region is formed again from the same head to take it in (see regrow).
        self.left_out: dict[int, set] = {}     # pending region head -> heads that left it out
        self.stale: set[int] = set()           # pending heads to form again once they are in
        self.executed = lambda address: False  # has a block run often enough to join a region
        # Blocks that joined a hot region (they had run): the dispatcher counts them afresh
        # when that region is in, so their count no longer says so.
        self.ran: set[int] = set()
        # baseline=interp: the interpreter's handler library (translator/handlers.py), and the
        # decoded blocks it runs, kept for warm_up.
        self.handlers = None
        self.records = None                    # records.RecordStore: records between runs
        if knobs.interpreted:
            from .handlers import HandlerLibrary
            self.handlers = HandlerLibrary(self.codegen, knobs,
                                           threaded=knobs.background == "on",
                                           save=store is not None)
            if store is not None:
                from .records import RecordStore
                self.records = RecordStore(store, fetch, self._key_base())
        self.interpreted: dict[int, object] = {}
        self.pages_read: set[int] = set()      # pages whose stored records were all made
        self.prefetched: list[Translation] = []   # made so (_page_records), for lookup_all

    def entry(self, host: int, data: int = 0):
        """A Python callable running the translated function at `host` (with `data`, the word
        the lookup table keeps beside it) from outside the dispatcher: fn(state address, memory
        base, permission table) -> exit code. Translated functions use their own calling
        convention (BLOCK_CC), so a C trampoline calls them."""
        if self._enter is None:
            from .runtime_ir import BLOCK_CC, MODULE_HEADER, RUNTIME_DEFS, native_entry
            ir = (MODULE_HEADER + RUNTIME_DEFS
                  + f"define i32 @jitbt_enter(ptr %fn, ptr %st, ptr %mem, ptr %perm, "
                    f"ptr %data) {{\n"
                  + native_entry("%st") + "\n"
                  f"  %r = call {BLOCK_CC} i32 %fn(ptr %st, ptr %mem, ptr %perm, ptr %data)\n"
                  f"  ret i32 %r\n}}\n")
            self._enter = ENTER_FN(self.codegen.compile(ir, ["jitbt_enter"])["jitbt_enter"])
        enter = self._enter
        return lambda st, mem, perm: enter(host, st, mem, perm, data)

    @property
    def decoder(self):
        """The decoder, made when first needed: a warm run may decode nothing, and capstone
        takes a noticeable part of start-up to import."""
        if self._decoder is None:
            from .decoder import Decoder
            self._decoder = Decoder()
        return self._decoder

    @property
    def lifter(self):
        """The lifter (translator/lifter.py), made and imported when first needed: a run whose
        code is all interpreted or loaded from the store lifts nothing (importing the lifter,
        with the regular expressions it compiles, was 3-5 ms of every start)."""
        if self._lifter is None:
            from .lifter import Lifter
            self._lifter = Lifter(self.knobs)
        return self._lifter

    @property
    def codegens(self):
        return (self.cold, self.codegen) if self.tiered else (self.codegen,)

    def lookup(self, address: int) -> Translation:
        """The translation of the block at `address`, translating a region around it on a miss."""
        return self.lookup_all(address)[-1]

    def lookup_all(self, address: int) -> list[Translation]:
        """The translation of the block at `address` (last), after the others a miss there
        made at the same time that the dispatcher should know at once: the blocks a stored
        interpreter entry holds for the same page (each would otherwise be a miss of its own,
        a return to Python: 750 of them in a warm hello world)."""
        t = self.cache.get(address)
        if t is not None:
            return [t]
        self.translate_region(address)
        key = self.cache.key
        extra, self.prefetched = self.prefetched, []
        return [x for x in extra if self.cache._lru.get((x.address,) + key) is x] + [
            self.cache._lru[(address,) + key]]

    def decode_region(self, address: int, max_blocks: int | None = None, include=None,
                      indirect=None):
        """Blocks reachable from `address` by direct branches (breadth first). By default those
        not translated yet; `include(addr)` decides instead when given. `indirect(block)`, when
        given, names candidate targets of a block's indirect jmp (they join when included)."""
        limit = max_blocks or self.region_blocks
        if self.written_pages and (address >> PAGE_SHIFT) in self.written_pages:
            limit = 1          # code that is rewritten: translate no more than what runs
        written = self.written_pages
        if include is None:
            def include(a):
                return a not in self.cache and (a >> PAGE_SHIFT) not in written
        blocks, seen, todo = [], {address}, [address]
        while todo and len(blocks) < limit:
            addr = todo.pop(0)
            block = self.decoder.decode_block(self.fetch, addr, self.max_insns)
            self.stats.decoded += 1
            blocks.append(block)
            succs = block.successors()
            if indirect is not None and (block.indirect_jump or block.jump_slot is not None):
                succs = succs + indirect(block)
            for succ in succs:
                if succ not in seen and include(succ) and self.fetch(succ, 1) \
                        and self.routine_at(succ) is None:
                    seen.add(succ)
                    todo.append(succ)
        return blocks

    def translate_region(self, address: int) -> list[Translation]:
        """Translate the code at `address` (a miss): a replaced routine (hle), the block
        interpreted (baseline=interp), a region an earlier run compiled (persistent cache), or
        a region of blocks compiled by the cold tier."""
        if self.routine_at(address) is not None:
            t = self.translate_routine(address)
            if t is not None:
                self.cache.put(t)
                return [t]
        out = None
        if self.handlers is not None:
            # (a compiled region stored by an earlier run is loaded when the block is warmed
            # up: interpreting a block 64 times costs less than loading a module for it)
            t = self._interpret(address)
            if t is not None:
                out = [t]
        if out is None:
            out = self._from_manifest(address)
        if out is None:
            t0 = time.perf_counter()
            blocks = self.decode_region(address)
            self.stats.seconds_decode += time.perf_counter() - t0
            out = self._compile_new([_shape(b) for b in blocks], [len(b.insns) for b in blocks],
                                    blocks)
        for t in out:
            self.cache.put(t)
        if self.handlers is not None and not out[0].interpreted:
            # Compiled without warming up (the handler library lacks a shape for a block):
            # the hot regions an earlier run stored at these blocks, as warm_up loads them.
            out += [h for t in out for h in self.stored_hot(t.address)]
        return out

    def _compile_new(self, shapes, ninsns, blocks) -> list[Translation]:
        """Compile a region of blocks of these shapes (the cold tier's modules when tiered;
        `blocks` None: decoded only if not in a cache), and remember its shape under its first
        address for later runs."""
        if self.tiered:
            out = self._compile_cold(shapes, ninsns, blocks)
        else:
            out = self._compile(shapes, ninsns, blocks, hot=True)
        self._put_shape(shapes, ninsns)
        return out

    def _put_shape(self, shapes, ninsns) -> None:
        """Remember the blocks of a cold region under its first address (_from_manifest)."""
        if self.store is not None:
            spec = [[start, start + len(raw), fault, n] for (start, fault, raw), n
                    in zip(shapes, ninsns)]
            self.store.put_changed(self._shape_key("shape", shapes[0][0]),
                                   encode(spec), SHAPE)

    def _compile_later(self, shapes, ninsns, blocks) -> bool:
        """warmup=auto with a persistent store: the cold modules of warmed-up blocks that no
        cache holds are compiled on a thread of their own for the store, and this run goes on
        interpreting the blocks (a later run loads the modules when the blocks warm up
        there). False when every module is at hand: then they are loaded now. (Compiled on
        the main thread, they cost a first run of sort 0.12 s, and hello world 40 ms of its
        130-180, most of it starting LLVM there; the interpreter runs such blocks about as
        fast as cold code does.)"""
        parts = self._cold_parts(shapes)
        missing = [(i, j, key) for i, j, key in parts if not self._have(self.cold, key)]
        if not missing:
            return False
        if self.warm_worker is None:
            from .background import Background
            self.warm_worker = Background(0)
        for i, j, key in missing:
            if key not in self.warm_keys:
                self.warm_keys.add(key)
                self.warm_worker.submit(key, self._blocks_ir(shapes[i:j], blocks and blocks[i:j],
                                                             f"b{key[:20]}"))
                self.stats.stored_later += j - i
        self.sent.update(start for start, _, _ in shapes)
        self._put_shape(shapes, ninsns)
        return True

    def store_later(self, wait: bool = False) -> None:
        """Put the modules the warm-up thread has compiled (_compile_later) in the store;
        `wait`: once it has compiled every one sent to it."""
        worker = self.warm_worker
        if worker is None:
            return
        if wait:
            worker.wait()
        for key, data, error, _ in worker.take():
            if error is not None:               # a translator bug
                raise RuntimeError(f"compiling warmed-up blocks on a thread failed: {error}")
            self.store.put(key, data)

    # ---- the interpreter (knob baseline=interp, translator/interp.py) -------------------------
    def _interpret(self, address: int) -> Translation | None:
        """The block at `address` decoded into interpreter records, or None when the handler
        library lacks a shape it needs (then wanted: built on the second thread)."""
        lib = self.handlers
        if not lib.loaded:
            lib.load()          # (its own line in --stats: not decoding time)
        t0 = time.perf_counter()
        if self.records is not None and (address >> PAGE_SHIFT) not in self.written_pages:
            t = self.records.translation(address, lib)
            if t is not None:
                self.stats.interp_blocks += 1
                self.stats.interp_insns += t.ninsns
                self._page_records(address, lib)
                self.stats.seconds_records += time.perf_counter() - t0
                return t
        s = self.stats
        keys: list[str] = []
        native = self._native
        if native is False:
            from . import fastdec
            native = self._native = fastdec.load(self.max_insns)
        made = native.interpret(lib, self.fetch, address, self.max_insns, keys) \
            if native is not None else None
        if made is not None:
            # (decoded and made into records in one native call: its time is decoding's)
            t, raw, succs = made
            s.decoded += 1
            s.decoded_native += 1
            s.seconds_decode += time.perf_counter() - t0
            return self._interpreted(t, keys, (None, raw, t.ninsns, succs))
        block = self.decoder.decode_block(self.fetch, address, self.max_insns)
        t1 = time.perf_counter()
        s.decoded += 1
        s.seconds_decode += t1 - t0
        t = interpret(lib, block, keys)
        if t is None and not lib.threaded:
            lib.build()                 # (background=off: the handlers, then the block)
            keys.clear()
            t = interpret(lib, block, keys)
        s.seconds_records += time.perf_counter() - t1
        if t is None:
            lib.submit()
            return None
        return self._interpreted(t, keys, block)

    def _interpreted(self, t: Translation, keys: list[str], kept) -> Translation:
        """Keep what warm_up needs of a block just interpreted (`kept`: its decoded Block, or
        (fetch fault, bytes, instructions, successors) when it was made without Insns), and
        its records for later runs."""
        self.interpreted[t.address] = kept
        if self.records is not None:
            if isinstance(kept, tuple):
                fault, raw, _, succs = kept
                end = t.end
            else:
                fault, raw, succs = (kept.fetch_fault, b"".join(i.raw for i in kept.insns),
                                     kept.successors())
                end = kept.end
            self.records.add(t.address, end, fault, raw, succs, t, keys)
        self.stats.interp_blocks += 1
        self.stats.interp_insns += t.ninsns
        return t

    def _page_records(self, address: int, lib) -> None:
        """With the first block made from a page's stored records, the page's other stored
        blocks are made too and entered in the cache (``lookup_all`` hands them to the
        dispatcher): the run before ran them, so this one likely will. Not blocks that are
        translated already or replaced routines (hle)."""
        page = address >> PAGE_SHIFT
        if page in self.pages_read:
            return
        self.pages_read.add(page)
        for a in self.records.others(address):
            if a in self.cache or self.routine_at(a) is not None:
                continue
            t = self.records.translation(a, lib)
            if t is not None:
                self.cache.put(t)
                self.prefetched.append(t)
                self.stats.interp_blocks += 1
                self.stats.interp_insns += t.ninsns

    def is_interpreted(self, address: int) -> bool:
        t = self.cache._lru.get((address,) + self.cache.key)
        return t is not None and t.interpreted

    def warm_up(self, address: int, runs) -> list[tuple[Translation, int]]:
        """The interpreted block at `address` has run often enough to be compiled: compile it
        with the interpreted blocks reachable from it by direct branches that have run
        (`runs(address)` > 0), by the cold tier, as one region; they replace the interpreted
        translations (the cache's). Returns each with the runs of the block it replaces.
        Blocks made from stored records are not decoded: their shapes and successors were
        stored with them, and a module a later run needs is in the persistent cache. When an
        earlier run stored a hot region at the block, that is loaded instead; at the others,
        those are loaded after them (stored_hot)."""
        hot = self.stored_hot(address)
        if hot:
            return [(t, 0) for t in hot]
        shapes, ninsns, blocks, seen, todo = [], [], [], {address}, [address]
        key = self.cache.key
        made = self.records.made if self.records is not None else {}
        while todo and len(shapes) < self.region_blocks:
            a = todo.pop(0)
            t = self.cache._lru.get((a,) + key)
            if a != address and (t is None or not t.interpreted or a in self.sent):
                continue            # (blocks sent for the store count as compiled ones)
            block = self.interpreted.pop(a, None)
            if block is None and a in made:
                block = made.pop(a)
            if isinstance(block, tuple):    # (made without Insns: stored or native records)
                fault, raw, n, succs = block
                shapes.append((a, fault, raw))
                ninsns.append(n)
                blocks.append(None)
            else:
                if block is None:           # (evicted meanwhile: decoded again)
                    block = self.decoder.decode_block(self.fetch, a, self.max_insns)
                    self.stats.decoded += 1
                shapes.append(_shape(block))
                ninsns.append(len(block.insns))
                blocks.append(block)
                succs = block.successors()
            for succ in succs:
                if succ not in seen and runs(succ) > 0:
                    seen.add(succ)
                    todo.append(succ)
        counts = {start: runs(start) for start, _, _ in shapes}
        if self.warm_later and self._compile_later(shapes, ninsns,
                                                   None if None in blocks else blocks):
            return [(t, counts[start]) for start, _, _ in shapes
                    if (t := self.cache._lru.get((start,) + key)) is not None and t.interpreted]
        self.stats.warmed += len(shapes)
        self.stats.warm_insns += sum(ninsns)
        out = self._compile_new(shapes, ninsns, None if None in blocks else blocks)
        for t in out:
            self.cache.put(t)
        early = [t for start, _, _ in shapes[1:] for t in self.stored_hot(start)]
        return [(t, counts.get(t.address, 0)) for t in out] + [(t, 0) for t in early]

    # ---- warm runs without decoding ------------------------------------------------------------
    # A region's shape (its blocks' extents) is stored beside its object code, under a key made
    # of its first address and bytes. A later run with the persistent cache reads the shape,
    # fetches those bytes from guest memory, and, when the module key they give is in the store,
    # loads the object without decoding anything: the key is a hash of the very bytes fetched,
    # so different code at the same address can never match.
    def _shape_key(self, kind: str, address: int) -> str:
        """The store key of a shape of `kind` ("shape": a cold module's block extents; "region
        shape": a hot region's block addresses) made at `address`, with its first bytes."""
        return module_key([kind, address, self.fetch(address, 16)], VERSION, self._key_base())

    def _stored_shape(self, kind: str, address: int, parse):
        """`parse(the stored value)` of the shape of `kind` at `address`, or None when there is
        none, the page holds rewritten code, or the entry does not parse."""
        if self.store is None or (address >> PAGE_SHIFT) in self.written_pages:
            return None
        data = self.store.get(self._shape_key(kind, address), SHAPE)
        if data is None:
            return None
        try:
            return parse(decode(data))
        except (ValueError, TypeError):
            return None

    def _from_manifest(self, address: int) -> list[Translation] | None:
        spec = self._stored_shape("shape", address, lambda v: [
            (int(a), int(e), None if f is None else int(f), int(n)) for a, e, f, n in v])
        if spec is None:
            return None
        shapes = []
        for start, end, fault, _ in spec:
            raw = self.fetch(start, end - start) if end > start else b""
            if len(raw) != end - start or (fault is not None and self.fetch(fault, 1)) \
                    or (start != address and self.routine_at(start) is not None):
                return None
            shapes.append((start, fault, raw))
        ninsns = [n for *_, n in spec]
        if not self.tiered:
            key = self.key("blocks", self.codegen, shapes)
            if not self._have(self.codegen, key):
                return None
            return self._compile(shapes, ninsns, None, hot=True, key=key)
        parts = self._cold_parts(shapes)
        if not all(self._have(self.cold, key) for _, _, key in parts):
            return None
        return self._compile_cold(shapes, ninsns, None, parts)

    def _have(self, codegen, key: str) -> bool:
        """Is the module with this key in this process or in the persistent store?"""
        return key in codegen.loaded or (self.store is not None and self.store.has(key))

    def _cold_parts(self, shapes) -> list[tuple[int, int, str]]:
        """How a cold region of these block shapes is cut into modules, as (first, end, key):
        in two halves compiled at the same time, one on this thread and one on a second
        (background=on, COLD_SPLIT blocks or more), else one module."""
        n = len(shapes)
        cuts = [(0, n)] if self.knobs.background != "on" or n < COLD_SPLIT else \
            [(0, n // 2), (n // 2, n)]
        return [(i, j, self.key("blocks", self.cold, shapes[i:j])) for i, j in cuts]

    def _compile_cold(self, shapes, ninsns, blocks, parts=None) -> list[Translation]:
        """The cold modules of a region's blocks (see _cold_parts). Both halves are compiled
        outside llvmlite's lock: LLVM works on separate contexts at once, and the blocks of a
        cold module each return to the dispatcher, so cutting a region in two changes no code.
        Measured on hello world's 141 cold modules: 0.43 s of LLVM one after another, 0.30 s
        on two threads."""
        parts = parts or self._cold_parts(shapes)
        codegen, waiting = self.cold, None
        if len(parts) == 2 and not self._have(codegen, parts[1][2]):
            k, j, key = parts[1]
            name = f"b{key[:20]}"
            if self.cold_worker is None:
                from .background import Background
                self.cold_worker = Background(0)
            self.cold_worker.submit(key, self._blocks_ir(shapes[k:j], blocks and blocks[k:j],
                                                         name))
            waiting = (key, name)
        i, k, key = parts[0]
        out = self._compile(shapes[i:k], ninsns[i:k], blocks and blocks[i:k], hot=False, key=key)
        if waiting is not None:
            t0 = time.perf_counter()
            self.cold_worker.wait()
            (done_key, data, error, seconds), = self.cold_worker.take()
            codegen.seconds_compile += time.perf_counter() - t0
            if error is not None:
                raise CompileError(error)
            if codegen.load_object(done_key, data, [waiting[1]]) is None:
                raise CompileError(f"{waiting[1]} missing from its object code")
            if self.store is not None:
                self.store.put(done_key, data)
        for k, j, key in parts[1:]:
            out += self._compile(shapes[k:j], ninsns[k:j], blocks and blocks[k:j], hot=False,
                                 key=key)
        return out

    def _blocks_ir(self, shapes, blocks, name: str, chain: bool = False) -> str:
        """The module of blocks entered at any of them (decoded again from their shapes when
        `blocks` is None); `chain`: the optimising tier's, else the cold tier's."""
        todo = blocks
        if todo is None:
            todo = [self.decoder.decode_block(self.fetch, start, self.max_insns)
                    for start, _, _ in shapes]
        from .lifter import module_text
        t1 = time.perf_counter()
        text, used = self.lifter.lift(list(todo), name, chain=chain, entries=True)
        ir = module_text([text], used)
        self._ir_time(time.perf_counter() - t1, chain)
        return ir

    def _ir_time(self, seconds: float, hot: bool) -> None:
        self.stats.seconds_ir += seconds
        if hot:
            self.stats.seconds_hot_ir += seconds

    # ---- routine replacement (hle) -------------------------------------------------------------
    def add_routines(self, found) -> None:
        """Replace the guest routines `found` (hle.Found, from hle.find_routines)."""
        for f in found:
            self.routines[f.address] = f.number
            self.routine_spans[f.address] = (f.end, f.digest)

    def routine_at(self, address: int) -> int | None:
        """The number of the routine that replaces the guest code at `address`, if one does."""
        if not self.routines or self.knobs.routines != "libc" or address in self.declined:
            return None
        return self.routines.get(address)

    def translate_routine(self, address: int) -> Translation | None:
        """The routine's host code as the translation of `address` (its code range included, so a
        store into it invalidates it like any other); None, and declined for good, when the
        guest's code there is no longer what was recognised."""
        from . import hle
        end, code_digest = self.routine_spans[address]
        if hle.digest(self.fetch(address, end - address)) != code_digest:
            self.declined.add(address)
            return None
        r = hle.ROUTINES[self.routines[address]]
        name = hle.function_name(r)
        key = self.key(f"hle {r.name}", self.codegen, [])
        host = self.codegen.compile_keyed(key, lambda: hle.module_ir(r), [name])[name]
        return Translation(address, end, host, 0, name, True, ((address, end),))

    def decline(self, address: int) -> Translation:
        """A routine could not do a call (Exit.DECLINE): from now on the guest's own code at
        `address` runs; returns its translation."""
        self.declined.add(address)
        old = self.cache._lru.pop((address,) + self.cache.key, None)
        if old is not None:
            self.cache._unindex(old)
        return self.lookup(address)

    def _joins(self, a: int, head: int, reached_pending: list) -> bool:
        """Does the block at `a` join the hot region headed at `head`? Blocks that have run
        join, and so does the head of another hot region unless that region holds `head` (it is
        the loop this region would only enter): a callee or an inner loop that turned hot first
        is compiled again as part of this region, so that calling it or looping through it
        does not leave the region. The same holds for a region still being compiled; one that
        holds `head` does not join, and is noted in `reached_pending`. (Left out instead, a
        callee still compiling cost sort's merge loop a second -O2 of 31 blocks, formed again
        to take in one block once the callee was in.)"""
        if a in self.pending_heads:
            if any(blocks[0].start == a and any(b.start == head for b in blocks)
                   for _, blocks in self.pending.values()):
                reached_pending.append(a)
                return False
            return True
        t = self.cache._lru.get((a,) + self.cache.key)
        if t is None:
            return False
        if t.hot:
            return all(not start <= head < end for start, end in t.ranges)
        return a in self.ran or self.executed(a)

    def promote(self, address: int, executed) -> list[Translation]:
        """Compile the hot block at `address`, with the blocks around it that have run
        (`executed(addr)`), by the optimising tier; they replace the cold translations. When
        a hot region leads to the block, that region may grow to take it in instead."""
        self.executed = executed

        def include(a, head=address):
            return self._joins(a, head, reached_pending)

        indirect = self._nearby if self.knobs.unit == "region" else None
        reached_pending: list[int] = []
        if address in self.pending_heads:
            # Its region is being compiled (the block lost its hold when another address took
            # its slot in the dispatcher's table and it came back counting from 0): compiling
            # it again, from what has run by now, cost strings a second or third -O2 of the
            # same loops.
            self.on_hold(address, True)
            return []
        owner = self.exits.get(address)
        if owner in self.pending_heads:
            region = [b for _, blocks in self.pending.values() if blocks[0].start == owner
                      for b in blocks]
            inside = {b.start for b in region}
            if address in inside or self._leads_back(address, inside, include, around=region):
                self._wait([owner], address)   # the region that leads here is being compiled
                return []
        t0 = time.perf_counter()
        blocks = self._grown(address, include, indirect)
        if blocks is None:
            blocks = self._stored_region(address)
        fresh = blocks is None or blocks[0].start != address   # (not a stored shape)
        if fresh:
            if blocks is None:
                reached_pending.clear()       # (what the tests above looked at)
                inner = self._inner_loop(address, owner)
                if inner is not None:
                    loop, held = inner

                    def include(a, head=address):   # (the region holds the rest already)
                        return (a in loop or a not in held) and self._joins(a, head,
                                                                            reached_pending)
                blocks = self.decode_region(address, self.hot_region_blocks, include=include,
                                            indirect=indirect)
                if reached_pending and self.waited.get(address, 0) < WAIT_LIMIT:
                    # It would leave for a region still being compiled (which it could take
                    # in once that is in): form it when it turns hot again after that.
                    self.waited[address] = self.waited.get(address, 0) + 1
                    self._wait(reached_pending, address)
                    return []
                # A loop nest is headed at an inner loop that turned hot first, not at the
                # outer loop's block that turns hot while that loop's region compiles (which
                # one did was timing): headed at the outer loop, LLVM's code for gcc's matmul
                # nest kept two memory windows' bounds on the stack in the inner loop and ran
                # 2.5 s warm instead of 2.05 s. A block that only leads into such a region
                # waits for it (that region grows to take it in when the loop's latch, one of
                # its exits, turns hot); so does the outer loop's block while the inner loop's
                # region is in flight; once it is in, or while it is only queued (then it is
                # dropped for this one: _supersede), the outer loop's region is formed with
                # that head. (Headed at the outer block in the queued case, 5 of 8 cold runs
                # of matmul stored it so, and their warm runs took 2.70 s against 2.27 s,
                # medians over 8 fresh caches each.)
                on_loop, inner = self._nest(blocks)
                pending = inner in self.pending_heads
                in_flight = pending and self._in_flight(inner)
                if inner is not None and (not on_loop or in_flight) \
                        and self.waited.get(address, 0) < WAIT_LIMIT:
                    self.waited[address] = self.waited.get(address, 0) + 1
                    if pending:
                        self._wait([inner], address)
                    return []
                if inner is not None and on_loop and not in_flight:
                    held = {b.start for b in blocks}
                    again = self.decode_region(inner, len(blocks), include=lambda a: a in held,
                                               indirect=indirect)
                    if {b.start for b in again} == held:
                        blocks = again
        self.stats.seconds_form += time.perf_counter() - t0
        head = blocks[0].start
        self._note_region(head, blocks, reached_pending)
        if LOG_REGIONS:
            _log_region(f"turned hot at {address:#x}" + ("" if fresh else " (stored)"), blocks,
                        reached_pending)
        return self._enter_region(blocks, fresh)

    def stored_hot(self, address: int) -> list[Translation]:
        """The hot region an earlier run formed at `address`, loaded from the persistent
        store when the block there has warmed up (warm_up; instead of compiling it cold and
        waiting for it to turn hot); [] when there is none. Which blocks turn hot first depends on
        timing, so a warm run that waited formed new regions at other heads of the same
        loops, and compiled them again (sort's second run spent 2.3 s of -O2 on them)."""
        if self.store is None or address in self.pending_heads:
            return []
        t0 = time.perf_counter()
        blocks = self._stored_region(address)
        self.stats.seconds_form += time.perf_counter() - t0
        if blocks is None:
            return []
        self._note_region(address, blocks, [])
        if LOG_REGIONS:
            _log_region(f"loaded early at {address:#x} (stored)", blocks)
        out = self._enter_region(blocks, fresh=False)
        self.stats.regions_early += len(out)
        return out

    def _enter_region(self, blocks, fresh: bool) -> list[Translation]:
        """The hot region of `blocks`, entered in the cache: loaded, or compiled now; or, with
        background compilation, sent to the background thread when it must be compiled (then
        nothing is returned now: ``finished`` returns it). `fresh`: its shape is not stored."""
        if self.knobs.background == "on":
            key = self.key("region", self.codegen, blocks)
            if key in self.pending:
                return []
            if not self._have(self.codegen, key):
                self._submit(key, blocks)
                return []
        t = self.compile_region(blocks)
        if fresh:
            self._store_shape(blocks)
        self.hot_blocks += len(blocks)
        self.stats.regions += 1
        return self._put_region(t, blocks)

    def _put_region(self, t: Translation, blocks) -> list[Translation]:
        """Enter a hot region in the cache: at its head, and at each side entry (knob
        ``entries``) where no other hot region is entered. Returns what was entered."""
        out = [t]
        if self.knobs.entries == "returns" and len(blocks) > 1:
            from .lifter import side_entries
            ends = {b.start: b.end for b in blocks}
            for x in side_entries(blocks):
                there = self.cache._lru.get((x,) + self.cache.key)
                if there is None or not there.hot:
                    out.append(Translation(x, max(ends[x], x + 1), t.host, 0, t.name, True,
                                           t.ranges))
        for x in out:
            self.cache.put(x)
        return out

    def _store_shape(self, blocks) -> None:
        """Keep the region's blocks under its head for the next run (see _stored_region); done
        once its code is in the store, so that a stored shape names code a warm run can load
        (a region still compiling when the run ended would otherwise be formed, and compiled,
        again by every warm run)."""
        if self.store is not None:
            self.store.put_changed(self._shape_key("region shape", blocks[0].start),
                                   encode([b.start for b in blocks]), SHAPE)

    def _nearby(self, block) -> list[int]:
        """Where an indirect jmp at the end of `block` may go: for a jmp through a pointer in
        guest memory (a PLT stub's), where the pointer points now; else blocks that have run on
        its page and the pages beside it (a switch's cases sit near its jump)."""
        if block.jump_slot is not None:
            target = self.peek(block.jump_slot)
            return [] if target is None else [target]
        page = block.start >> PAGE_SHIFT
        return sorted(a for p in (page - 1, page, page + 1)
                      for a in self.cache._by_page.get(p, ()))

    def _note_region(self, head: int, blocks, reached_pending) -> None:
        """Remember where the region formed at `head` leads (for growth), and which regions
        still compiling it left out (to be taken in once they are in)."""
        self.ran.update(b.start for b in blocks)
        for b in blocks:
            for a in [b.start] + b.successors():
                if a != head:
                    self.exits[a] = head
        for p in reached_pending:
            if p != head:
                self.left_out.setdefault(p, set()).add(head)

    def _nest(self, blocks) -> tuple[bool, int | None]:
        """For the region `blocks` formed at its first block: is that block on a loop inside
        it, and the head of a hot region (compiled or being compiled) it meets, if any. On a
        loop: a head of an inner loop (a cycle through it that does not pass the first block).
        Not: a head the first block branches or falls straight to, which the region would
        only enter. Paths stay in the function (over a call to the instruction after it).
        See promote."""
        inside = {b.start: b for b in blocks}
        steps = {a: [x for x in _steps(b) if x in inside] for a, b in inside.items()}

        def reach(start, avoid):
            seen, todo = set(), list(steps[start])
            while todo:
                a = todo.pop()
                if a not in seen and a != avoid:
                    seen.add(a)
                    todo += steps[a]
            return seen

        first = blocks[0].start
        if first not in reach(first, None):
            return False, next((a for a in steps[first] if a != first and self._region_head(a)),
                               None)
        return True, next((h for h in sorted(reach(first, first))
                           if self._region_head(h) and h in reach(h, first)), None)

    def _in_flight(self, head: int) -> bool:
        """Is a region headed at `head` being compiled now (started: no longer to be
        dropped from the queue)?"""
        return any(blocks[0].start == head and not self.background.queued(key)
                   for key, (_, blocks) in self.pending.items())

    def _region_head(self, address: int) -> bool:
        """Does a hot region (compiled, or being compiled) start at `address`?"""
        if address in self.pending_heads:
            return True
        t = self.cache._lru.get((address,) + self.cache.key)
        return t is not None and t.hot and bool(t.ranges) and t.ranges[0][0] == address

    def regrow(self, head: int) -> list[Translation]:
        """The region at `head` left out regions that were still being compiled when it was
        formed, and they are in now: form it again from the same head and compile it in the
        background. (Left out, the program left the region for them and came back through the
        dispatcher every time: a strtok loop formed while strcspn's region compiled chained
        between three regions for every token.) A region still compiling itself is formed
        again once it is in. Returns the region when it was in the persistent store."""
        if head in self.pending_heads:
            self.stale.add(head)
            return []
        t = self.cache._lru.get((head,) + self.cache.key)
        if t is None or not t.hot or self.grown.get(head, 0) >= GROW_LIMIT:
            return []
        keep = frozenset(start for start, _ in t.ranges)
        reached: list[int] = []
        indirect = self._nearby if self.knobs.unit == "region" else None
        t0 = time.perf_counter()
        blocks = self.decode_region(head, self.hot_region_blocks, indirect=indirect,
                                    include=lambda a: a in keep or self._joins(a, head, reached))
        self.stats.seconds_form += time.perf_counter() - t0
        if {b.start for b in blocks} <= keep:
            return []
        self.grown[head] = self.grown.get(head, 0) + 1
        self.stats.regions_grown += 1
        self._note_region(head, blocks, reached)
        if LOG_REGIONS:
            _log_region("formed again with regions compiled since", blocks, reached)
        return self._enter_region(blocks, fresh=True)

    def _grown(self, address: int, include, indirect):
        """The blocks of the hot region that leads to the hot block at `address` (its head is
        in ``exits``), grown by what has run since it was formed; None when it does not grow:
        it has grown often enough, it is full, or nothing that ran since leads back into it
        (a path that leaves for good costs one chained exit: not worth recompiling for)."""
        head = self.exits.pop(address, None)
        if head is None or self.grown.get(head, 0) >= GROW_LIMIT:
            return None
        t = self.cache._lru.get((head,) + self.cache.key)
        if t is None or not t.hot or len(t.ranges) >= self.hot_region_blocks:
            return None
        keep = frozenset(start for start, _ in t.ranges)   # (their counts were restarted)
        blocks = self.decode_region(head, self.hot_region_blocks, indirect=indirect,
                                    include=lambda a: a in keep or include(a, head))
        if not self._leads_back(address, keep, include, blocks):
            return None
        self.stats.regions_grown += 1
        self.grown[head] = self.grown.get(head, 0) + 1
        return blocks

    def _inner_loop(self, address: int, owner: int | None):
        """When the hot block at `address` is inside the compiled hot region headed at `owner`,
        on one of its loops, the blocks of the innermost such loop (a natural loop: those its
        head dominates from the region's head that lead back to it, what its calls run
        included: lifter.region_loops) and all the region's blocks; else None. The guest came
        back into that region's code there through the lookup table, which enters a region only
        at its head: a budget exit at an inner loop's backward branch leaves there. A region
        formed at the block takes in only that loop: formed as usual it was the whole region
        again (sort's merge loop: a second region of 30 blocks, 0.3 s of -O2, which ran only
        after budget exits)."""
        if owner is None or owner == address:
            return None
        t = self.cache._lru.get((owner,) + self.cache.key)
        if t is None or not t.hot:
            return None
        held = frozenset(start for start, _ in t.ranges)
        if address not in held:
            return None
        blocks = self.decode_region(owner, len(held), include=lambda a: a in held,
                                    indirect=self._nearby if self.knobs.unit == "region" else None)
        from .lifter import region_loops
        loops = [body for body in region_loops(blocks).values() if address in body]
        return (min(loops, key=len), held) if loops else None

    def _leads_back(self, address: int, inside, include, blocks=None, around=()) -> bool:
        """Does a path that has run from the block at `address` (through `blocks`, else
        through those `include` takes) lead back into the blocks `inside`? A ret does when
        `blocks` holds it in a function that a call of `inside` calls and returns into
        `inside` from: the callee's other way out comes back to its caller in the region.
        (`around`: the blocks of `inside`, when `blocks` holds only the path.)
        (Without it, strings' strstr loop left its region for memcmp's second path and came
        back through the lookup table, 0.6 million times in a warm run; that path headed a
        region of its own, and its return site a third.)"""
        if blocks is None:
            blocks = self.decode_region(address, 8, include=lambda a: a not in inside
                                        and include(a))
        if any(s in inside for b in blocks if b.start not in inside for s in b.successors()):
            return True
        rets = {b.start for b in blocks if b.start not in inside and b.insns
                and b.insns[-1].mnemonic == "ret"}
        return bool(rets) and bool(rets & _called(list(around) + list(blocks), inside))

    # Which blocks a hot region takes in depends on what has run and what is hot or still
    # compiling when its head turns hot, so a warm run would not always form the regions the
    # cold run stored. The blocks' addresses are stored under the head's address and bytes; a
    # warm run decodes those blocks and loads the region when the store holds their key (a hash
    # of the bytes decoded now, so changed code never matches).
    def _stored_region(self, address: int):
        starts = self._stored_shape("region shape", address, lambda v: [int(a) for a in v])
        if not starts or starts[0] != address:
            return None
        blocks = [self.decoder.decode_block(self.fetch, a, self.max_insns) for a in starts]
        self.stats.decoded += len(blocks)
        key = self.key("region", self.codegen, blocks)
        return blocks if key in self.codegen.loaded or self.store.has(key) else None

    # ---- hot regions compiled in the background (knob background, translator/background.py) ----
    def _submit(self, key: str, blocks) -> None:
        if self.background is None:
            from .background import Background
            self.background = Background(self.codegen.opt_level, self.on_compiled,
                                         runs=self.runs)
        name = f"r{key[:20]}"
        ir = self._region_ir(blocks, name)
        self._supersede(blocks)
        self.pending[key] = (name, blocks)
        self.pending_heads.add(blocks[0].start)
        self.background.submit(key, ir, tuple(b.start for b in blocks))
        for b in blocks:
            self.on_hold(b.start, True)

    def _supersede(self, blocks) -> None:
        """Drop the regions waiting for the background thread whose every block the region
        of `blocks` holds: it took them in (a callee or an inner loop that turned hot just
        before its caller, see _joins), and compiling them too only delays it. What waited
        for one of them waits for this one. (strings queued its strstr loop's 56-block region
        and, 14 ms later, main's loop around it with the same 56 blocks and two more: 0.8 s of
        -O2 for code the guest then never entered.) A head that is entered from elsewhere
        turns hot again and forms a region of its own then. A smaller one with the same head
        is dropped too (a loop nest headed at its inner loop: promote)."""
        head, inside = blocks[0].start, {b.start for b in blocks}
        for key, (_, old) in list(self.pending.items()):
            h = old[0].start
            if not inside.issuperset(b.start for b in old):
                continue
            if not self.background.cancel(key):
                continue                       # (being compiled: it comes in soon anyway)
            del self.pending[key]
            self.pending_heads.discard(h)
            self.stats.regions_superseded += 1
            self.waiters.setdefault(head, set()).update(self.waiters.pop(h, ()))
            self.left_out.setdefault(head, set()).update(self.left_out.pop(h, set()) - {head})
            self.stale.discard(h)
            if LOG_REGIONS:
                sys.stderr.write(f"jitbt: {time.perf_counter() - _T0:6.3f} region {h:#x} "
                                 f"({len(old)} blocks) dropped: {head:#x}'s holds it\n")

    def _wait(self, heads, address: int) -> None:
        """The hot block at `address` waits for the regions at `heads` being compiled: it is
        held (cannot turn hot) until one of them is in, then counts afresh. (Counting afresh
        at once, a loop turned hot again in a few milliseconds, long before a region of
        0.3-0.8 s of -O2 was in, and then formed a region without it that grew later, which
        compiled the same loop two or three times.)"""
        for h in heads:
            self.waiters.setdefault(h, set()).add(address)
        self.on_hold(address, True)

    def finished(self) -> list[Translation]:
        """The hot regions the background thread has compiled since the last call, entered in
        the cache; one whose guest bytes changed meanwhile (or were unmapped) is dropped."""
        bg = self.background
        if bg is None or not bg.ready():
            return []
        out = []
        for key, data, error, seconds in bg.take():
            name, blocks = self.pending.pop(key)
            if LOG_REGIONS:
                sys.stderr.write(f"jitbt: {time.perf_counter() - _T0:6.3f} region "
                                 f"{blocks[0].start:#x} ({len(blocks)} blocks) compiled in "
                                 f"{seconds:.3f} s on the background thread\n")
            self.pending_heads.discard(blocks[0].start)
            for b in blocks:
                self.on_hold(b.start, False)
            for a in self.waiters.pop(blocks[0].start, ()):
                self.on_hold(a, False)
            if error is not None:           # a translator bug: report it with the IR
                self.compile_region(blocks)
                raise RuntimeError(f"background compile failed: {error}")
            if self.store is not None:
                self.store.put(key, data)
                self._store_shape(blocks)
            if not all(map(self._unchanged, blocks)):
                self.stats.regions_dropped += 1
                continue
            addrs = self.codegen.load_object(key, data, [name])
            if addrs is None:
                raise RuntimeError(f"background compile: {name} missing from its object code")
            t = self._region_translation(blocks, addrs[name], name)
            self.hot_blocks += len(blocks)
            self.stats.regions += 1
            out += self._put_region(t, blocks)
            head = blocks[0].start
            for h in sorted(self.left_out.pop(head, ())) + ([head] if head in self.stale else []):
                self.stale.discard(h)
                out += self.regrow(h)
        return out

    def _unchanged(self, block) -> bool:
        """Are the guest bytes the block was decoded from still there, and executable (and
        still not so where its fetch faulted)?"""
        _, fault, raw = _shape(block)
        return self.fetch(block.start, len(raw)) == raw and (
            fault is None or not self.fetch(fault, 1))

    def close(self) -> None:
        """End the background thread (waiting for the job in flight); what it finished is kept
        in the persistent store for the next run, and so are the interpreter's records."""
        if self.records is not None:
            self.records.save(self.written_pages)
        if self.warm_worker is not None:
            self.store_later(wait=True)
            self.warm_worker.close()
        if self.handlers is not None:
            self.handlers.close()
        if self.background is not None:
            # Without a store, a region still compiling is of no use to anyone: not waited for.
            bg = self.background
            for key, data, error, _ in bg.close(wait=self.store is not None):
                _, blocks = self.pending.pop(key, (None, None))
                if data is not None and self.store is not None:
                    self.store.put(key, data)
                    if blocks is not None:
                        self._store_shape(blocks)

    def key(self, kind: str, codegen, blocks) -> str:
        """What shapes a module's code: the guest bytes and block shapes, the compiling tier, the
        lifter's knobs, and the translator itself."""
        parts = [kind, codegen.opt_level]
        for b in blocks:
            parts += b if isinstance(b, tuple) else _shape(b)
        return module_key(parts, VERSION, self._key_base())

    def _key_base(self) -> tuple:
        """The parts of every key that are the same for every module of a run (module_key
        hashes them once; the CPU model is read each time, since tests change it)."""
        from runtime import cpu
        return (SOURCE_DIGEST, cpu.signature(), self.knobs.key())

    def compile_region(self, blocks) -> Translation:
        """Compile blocks as one function entered at the first, by the optimising tier."""
        key = self.key("region", self.codegen, blocks)
        name = f"r{key[:20]}"
        host = self.codegen.compile_keyed(key, lambda: self._region_ir(blocks, name), [name])[name]
        return self._region_translation(blocks, host, name)

    def _region_ir(self, blocks, name: str) -> str:
        """The module of a hot region: its blocks lifted as one function called `name`."""
        from .lifter import module_text
        t1 = time.perf_counter()
        text, used = self.lifter.lift(blocks, name)
        ir = module_text([text], used)
        self._ir_time(time.perf_counter() - t1, True)
        return ir

    def _region_translation(self, blocks, host: int, name: str) -> Translation:
        self.stats.modules += 1
        head = blocks[0]
        return Translation(head.start, max(head.end, head.start + 1), host,
                           sum(len(b.insns) for b in blocks), name, True,
                           tuple((b.start, max(b.end, b.start + 1)) for b in blocks))

    def compile_blocks(self, blocks, hot: bool = True) -> list[Translation]:
        """Lift blocks into one LLVM function, entered at the block whose address is in the
        state's rip, and compile it (the cache is left alone)."""
        return self._compile([_shape(b) for b in blocks], [len(b.insns) for b in blocks],
                             blocks, hot)

    def _compile(self, shapes, ninsns, blocks, hot: bool, key: str | None = None
                 ) -> list[Translation]:
        """The module of the blocks with these shapes ((start, fetch fault, bytes)); `blocks`
        are only needed when it is not in a cache (None: decode them again)."""
        codegen = self.codegen if hot else self.cold
        key = key or self.key("blocks", codegen, shapes)
        name = f"b{key[:20]}"

        host = codegen.compile_keyed(key, lambda: self._blocks_ir(shapes, blocks, name, hot),
                                     [name])[name]
        s = self.stats
        s.blocks += len(shapes)
        s.insns += sum(ninsns)
        s.modules += 1
        return [Translation(start, max(start + len(raw), start + 1), host, n, name, hot)
                for (start, _, raw), n in zip(shapes, ninsns)]


def _shape(block) -> tuple:
    """What of a block goes into a module key: where it starts, where its fetch faults, and its
    bytes (the instructions' bytes, which are the guest bytes from start to end)."""
    return (block.start, block.fetch_fault, b"".join(i.raw for i in block.insns))
