"""The block cache: translated blocks keyed by guest address and everything that shapes the code.

Bounded (LRU, cachetools) and indexed by guest page, so that a write into translated code can drop
exactly the blocks on the pages it touches. Eviction is reported to a listener (the dispatcher's
native lookup table must forget the block too)::

    cache = BlockCache(maxsize=65536, key=("block",))
    cache.put(Translation(0x401000, 0x401020, host_addr, 7, "b_401000_1"))
    cache.get(0x401000)                          # -> Translation or None (counted hit/miss)
    cache.invalidate_range(0x401000, 0x402000)    # -> the translations removed
"""
from __future__ import annotations

from .plain import dataclass, field

from cachetools import LRUCache

from .state import PAGE_SHIFT


@dataclass(frozen=True, slots=True)
class Translation:
    address: int      # first guest byte
    end: int          # one past the last guest byte
    host: int         # host address of the compiled function
    ninsns: int
    name: str
    hot: bool = False  # compiled by the optimising tier
    ranges: tuple = ()  # for a region: the (start, end) of every block in it
    data: int = 0      # the word passed to `host` beside it (interpreted blocks: the records)
    records: object = field(default=None, compare=False)   # what `data` points into (kept alive)

    @property
    def interpreted(self) -> bool:
        """Run by the interpreter (translator/interp.py), not compiled."""
        return self.data != 0

    def extents(self) -> tuple:
        return self.ranges or ((self.address, max(self.end, self.address + 1)),)

    def pages(self) -> set:
        if not self.ranges:                 # (one block: nearly always one page)
            first = self.address >> PAGE_SHIFT
            last = (max(self.end, self.address + 1) - 1) >> PAGE_SHIFT
            return {first} if first == last else set(range(first, last + 1))
        return {p for start, end in self.ranges
                for p in range(start >> PAGE_SHIFT, ((end - 1) >> PAGE_SHIFT) + 1)}

    def overlaps(self, start: int, end: int) -> bool:
        return any(s < end and e > start for s, e in self.extents())


class _LRU(LRUCache):
    def __init__(self, maxsize, on_evict):
        super().__init__(maxsize)
        self._on_evict = on_evict

    def popitem(self):
        key, value = super().popitem()
        self._on_evict(key, value)
        return key, value


class BlockCache:
    def __init__(self, maxsize: int = 1 << 16, key: tuple = (), on_evict=None):
        self.key = key                 # the knobs that change generated code (level, CPU model)
        self._lru = _LRU(maxsize, self._evicted)
        self._by_page: dict[int, set] = {}
        self.on_evict = on_evict
        self.on_put = None             # listener(t, its pages): a translation entered (SMC)
        self.hits = 0
        self.misses = 0

    def _evicted(self, key, t: Translation) -> None:
        self._unindex(t)
        if self.on_evict:
            self.on_evict(t)

    def _unindex(self, t: Translation) -> None:
        for page in t.pages():
            s = self._by_page.get(page)
            if s is not None:
                s.discard(t.address)
                if not s:
                    del self._by_page[page]

    def get(self, address: int) -> Translation | None:
        t = self._lru.get((address,) + self.key)
        if t is None:
            self.misses += 1
        else:
            self.hits += 1
        return t

    def __contains__(self, address: int) -> bool:
        return (address,) + self.key in self._lru

    def put(self, t: Translation) -> None:
        """Enter a translation. One it replaces is reported to ``on_evict`` like an evicted
        one: the dispatcher's table must not keep calling it (an interpreted block's records
        are freed with it)."""
        key = (t.address,) + self.key
        old = self._lru.get(key)
        if old is not None and old is not t:
            self._unindex(old)
            if self.on_evict:
                self.on_evict(old)
        self._lru[key] = t
        pages = t.pages()
        for page in pages:
            self._by_page.setdefault(page, set()).add(t.address)
        if self.on_put:
            self.on_put(t, pages)

    def on_page(self, page: int) -> bool:
        """Is there a translation of code on guest page `page`?"""
        return bool(self._by_page.get(page))

    def invalidate_range(self, start: int, end: int) -> list[Translation]:
        """Drop every translation whose guest bytes overlap [start, end)."""
        removed = []
        for page in range(start >> PAGE_SHIFT, ((end - 1) >> PAGE_SHIFT) + 1):
            for addr in list(self._by_page.get(page, ())):
                t = self._lru.get((addr,) + self.key)
                if t is not None and t.overlaps(start, end):
                    del self._lru[(addr,) + self.key]
                    self._unindex(t)
                    removed.append(t)
        return removed

    def __len__(self) -> int:
        return len(self._lru)
