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

import hashlib
import itertools
import time
from pathlib import Path
from dataclasses import dataclass, field

from .cache import BlockCache, Translation
from .codegen import Codegen
from .decoder import Decoder
from .knobs import Knobs
from .lifter import Lifter, module_text
from .persist import module_key

VERSION = "0.1.0"


def _source_digest() -> str:
    """A digest of the translator's own sources and the CPU model: part of every persistent-cache
    key, so an object compiled by other semantics is never reused, whatever the version says."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(here.rglob("*.py")) + [here.parent / "runtime" / "cpu.py"]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


SOURCE_DIGEST = _source_digest()


@dataclass
class Stats:
    blocks: int = 0
    insns: int = 0
    modules: int = 0
    regions: int = 0
    seconds_decode: float = 0.0
    seconds_ir: float = 0.0
    extra: dict = field(default_factory=dict)


class Translator:
    def __init__(self, fetch, knobs: Knobs | None = None, cache_size: int = 1 << 16,
                 tiered: bool = True, store=None):
        self.fetch = fetch
        self.knobs = knobs = knobs or Knobs()
        self.decoder = Decoder()
        self.lifter = Lifter(knobs)
        self.store = store                            # persist.ObjectStore, or None
        self.codegen = Codegen(knobs.opt, store)      # the optimising tier
        # Only the region unit has a second tier: it is what merges hot blocks into regions.
        self.tiered = tiered and knobs.opt > 0 and knobs.unit == "region"
        self.cold = Codegen(0, store) if self.tiered else self.codegen
        self.region_blocks = knobs.region
        self.max_insns = 1 if knobs.unit == "insn" else None
        self.hot_region_blocks = 16          # -O2 time grows faster than linearly with size
        self.cache = BlockCache(cache_size, key=knobs.key())
        self.stats = Stats()
        self.hot_blocks = 0
        self._serial = itertools.count(1)

    @property
    def codegens(self):
        return (self.cold, self.codegen) if self.tiered else (self.codegen,)

    def lookup(self, address: int) -> Translation:
        """The translation of the block at `address`, translating a region around it on a miss."""
        t = self.cache.get(address)
        if t is None:
            self.translate_region(address)
            t = self.cache._lru[(address,) + self.cache.key]
        return t

    def decode_region(self, address: int, max_blocks: int | None = None, include=None):
        """Blocks reachable from `address` by direct branches (breadth first). By default those
        not translated yet; `include(addr)` decides instead when given."""
        limit = max_blocks or self.region_blocks
        if include is None:
            def include(a):
                return a not in self.cache
        blocks, seen, todo = [], {address}, [address]
        while todo and len(blocks) < limit:
            addr = todo.pop(0)
            block = self.decoder.decode_block(self.fetch, addr, self.max_insns)
            blocks.append(block)
            for succ in block.successors():
                if succ not in seen and include(succ) and self.fetch(succ, 1):
                    seen.add(succ)
                    todo.append(succ)
        return blocks

    def translate_region(self, address: int) -> list[Translation]:
        t0 = time.perf_counter()
        blocks = self.decode_region(address)
        self.stats.seconds_decode += time.perf_counter() - t0
        out = self.compile_blocks(blocks, hot=not self.tiered)
        for t in out:
            self.cache.put(t)
        return out

    def promote(self, address: int, executed) -> list[Translation]:
        """Compile the hot block at `address`, with the blocks around it that have run
        (`executed(addr)`), by the optimising tier; they replace the cold translations."""
        def include(a):
            t = self.cache._lru.get((a,) + self.cache.key)
            return t is not None and not t.hot and executed(a)
        t0 = time.perf_counter()
        blocks = self.decode_region(address, self.hot_region_blocks, include=include)
        self.stats.seconds_decode += time.perf_counter() - t0
        t = self.compile_region(blocks)
        self.cache.put(t)
        self.hot_blocks += len(blocks)
        self.stats.regions += 1
        return [t]

    def key(self, kind: str, codegen, blocks) -> str:
        """What shapes a module's code: the guest bytes and block shapes, the compiling tier, the
        lifter's knobs, and the translator itself."""
        from runtime import cpu
        parts = [kind, SOURCE_DIGEST, cpu.signature(), codegen.opt_level, self.knobs.key()]
        for b in blocks:
            parts += [b.start, b.fetch_fault, b"".join(i.raw for i in b.insns)]
        return module_key(parts, VERSION)

    def compile_region(self, blocks) -> Translation:
        """Compile blocks as one function entered at the first, by the optimising tier."""
        key = self.key("region", self.codegen, blocks)
        name = f"r{key[:20]}"

        def build_ir() -> str:
            t1 = time.perf_counter()
            text, used = self.lifter.lift(blocks, name)
            ir = module_text([text], used)
            self.stats.seconds_ir += time.perf_counter() - t1
            return ir

        host = self.codegen.compile_keyed(key, build_ir, [name])[name]
        self.stats.modules += 1
        head = blocks[0]
        return Translation(head.start, max(head.end, head.start + 1), host,
                           sum(len(b.insns) for b in blocks), name, True,
                           tuple((b.start, max(b.end, b.start + 1)) for b in blocks))

    def compile_blocks(self, blocks, hot: bool = True) -> list[Translation]:
        """Lift blocks into one LLVM module and compile it (the cache is left alone)."""
        codegen = self.codegen if hot else self.cold
        key = self.key("blocks", codegen, blocks)
        names = [f"b{key[:20]}_{i}" for i in range(len(blocks))]

        def build_ir() -> str:
            t1 = time.perf_counter()
            functions, intrinsics = [], set()
            for block, name in zip(blocks, names):
                text, used = self.lifter.lift(block, name)
                functions.append(text)
                intrinsics |= used
            ir = module_text(functions, intrinsics)
            self.stats.seconds_ir += time.perf_counter() - t1
            return ir

        addrs = codegen.compile_keyed(key, build_ir, names)
        s = self.stats
        s.blocks += len(blocks)
        s.insns += sum(len(b.insns) for b in blocks)
        s.modules += 1
        return [Translation(block.start, max(block.end, block.start + 1), addrs[name],
                            len(block.insns), name, hot) for block, name in zip(blocks, names)]
