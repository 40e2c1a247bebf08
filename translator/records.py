"""Interpreter records kept between runs, one store entry per page of guest code.

A warm run interprets the start-up code the run before it interpreted; decoding it again cost a
static hello world about half of its warm run. So the records of the blocks interpreted on a
page are stored under the page's address and bytes: a later run whose page holds the same bytes
makes those blocks' records from the entry, after checking each block's own bytes (a block may
run on into the next page), with the handler addresses of its own handler library (a record
names its handler by shape key)::

    rs = RecordStore(store, fetch, key_base)
    t = rs.translation(address, library)     # an interpreted Translation, or None
    rs.add(start, end, fault, raw, succs, t, keys)   # a block interpreted this run (its
                                             # extent, bytes and successors, its translation
                                             # and interp.interpret's keys): saved by save()
    rs.save(written_pages)
"""
from __future__ import annotations

import array
import ctypes
import struct

from . import VERSION
from .cache import Translation
from .interp import RECORD
from .persist import decode, encode, module_key
from .state import PAGE_SHIFT, PAGE_SIZE

SUFFIX = ".rec"


class RecordStore:
    def __init__(self, store, fetch, key_base: tuple):
        self.store = store              # persist.ObjectStore
        self.fetch = fetch
        self.key_base = key_base
        self.pages: dict[int, dict | None] = {}   # page -> {start: stored entry}, None: none
        self.new: dict[int, dict] = {}            # page -> {start: (keys, words, ...)} to save
        self.loaded = 0                           # blocks made from stored records
        self.built: dict[int, dict] = {}          # page -> {start: (Translation, ...)} not
                                                  # handed out yet (see _build)
        # start -> (fetch fault, bytes, instructions, successors) of each block made from
        # stored records: what compiling it needs without decoding it (Translator.warm_up)
        self.made: dict[int, tuple] = {}

    def _key(self, page: int) -> str | None:
        data = self.fetch(page << PAGE_SHIFT, PAGE_SIZE)
        if not data:
            return None
        return module_key(["records", page, data], VERSION, self.key_base)

    def _page(self, page: int) -> dict | None:
        if page in self.pages:
            return self.pages[page]
        entries = None
        key = self._key(page)
        data = self.store.get(key, SUFFIX) if key else None
        if data is not None:
            entries = _parse(data)
        self.pages[page] = entries
        return entries

    def translation(self, address: int, library) -> Translation | None:
        """The interpreted translation of the block at `address` from stored records, when
        its page's entry has it, its bytes are unchanged and `library` has its handlers. The
        first asked for on a page makes the page's other blocks too (_build); one not among
        them (its handlers were missing then, or it was handed out before) is made alone."""
        page = address >> PAGE_SHIFT
        built = self.built.get(page)
        if built is None:
            built = self.built[page] = self._build(self._page(page) or {}, library)
        e = built.pop(address, None)
        if e is None:
            entries = self.pages.get(page)
            if not entries or address not in entries:
                return None
            e = self._build({address: entries[address]}, library).get(address)
            if e is None:
                return None
        t, fault, raw, succs = e
        # (the bytes are checked here, when a block is handed out, not when its page is made)
        if self.fetch(address, len(raw)) != raw or (fault is not None and self.fetch(fault, 1)):
            return None
        self.loaded += 1
        self.made[address] = (fault, raw, t.ninsns, succs)
        return t

    def _build(self, entries: dict, library) -> dict:
        """{start: (Translation, fetch fault, bytes, successors)} of the stored `entries` whose
        handlers `library` has: their records in one buffer, its handler words written with
        one slice assignment (a buffer and a view a block were a third of making a warm hello
        world's 756 blocks)."""
        addr = library.addr
        spans, parts, handlers = [], [], []
        for start, (end, fault, raw, keys, words, succs) in entries.items():
            hs = [addr.get(k) for k in keys]
            if None in hs:
                continue
            spans.append((start, end, fault, raw, succs, len(handlers), len(hs)))
            parts.append(words)
            handlers += hs
        if not spans:
            return {}
        buf = ctypes.create_string_buffer(b"".join(parts), len(handlers) * RECORD)
        memoryview(buf).cast("B").cast("Q")[::RECORD // 8] = array.array("Q", handlers)
        base = ctypes.addressof(buf)
        return {start: (Translation(start, max(end, start + 1), handlers[first], n - 1,
                                    "interp", False, (), base + first * RECORD, buf),
                        fault, raw, succs)
                for start, end, fault, raw, succs, first, n in spans}

    def others(self, address: int) -> list[int]:
        """The other blocks the stored entry of `address`'s page holds (after a translation
        made from it: the entry is read)."""
        entries = self.pages.get(address >> PAGE_SHIFT)
        return [a for a in entries if a != address] if entries else []

    def add(self, start: int, end: int, fault: int | None, raw: bytes, succs: list,
            t: Translation, keys: list[str]) -> None:
        """Remember a block interpreted this run, to be saved: its translation `t` (its
        records, whose handler words are left out: a later run's library has its own
        addresses) and the handler key of each record (interp.interpret's `keys`). (Made again
        from the block's instructions, the keys and words cost a first run with the cache a
        third as much again as interpreting it: 15-22 ms of a hello world's.)"""
        words = memoryview(bytearray(t.records)).cast("Q")
        words[::RECORD // 8] = array.array("Q", bytes(8 * len(keys)))
        words = words.tobytes()
        self.new.setdefault(start >> PAGE_SHIFT, {})[start] = (end, fault, raw, keys, words,
                                                              succs)

    def save(self, skip=()) -> None:
        """Store the entries of the pages that got blocks this run (with what their entries
        held before), except pages in `skip` (code written by the guest)."""
        for page, fresh in self.new.items():
            if page in skip:
                continue
            key = self._key(page)
            if key is None:
                continue
            entries = dict(self.pages.get(page) or {})
            entries.update(fresh)
            self.store.put(key, _pack(entries), SUFFIX)


def _pack(entries: dict) -> bytes:
    keys: dict[str, int] = {}
    blocks, blob = [], []
    for start, (end, fault, raw, ks, words, succs) in entries.items():
        blocks.append([start, end, fault, len(raw), [keys.setdefault(k, len(keys)) for k in ks],
                       succs])
        blob += [raw, words]
    head = encode({"keys": list(keys), "blocks": blocks})
    return struct.pack("<I", len(head)) + head + b"".join(blob)


def _parse(data: bytes):
    """{start: (end, fault, raw, keys, words, successors)} of an entry, or None if malformed."""
    try:
        (n,) = struct.unpack_from("<I", data)
        head = decode(data[4:4 + n])
        names = head["keys"]
        at, out = 4 + n, {}
        for start, end, fault, nraw, ks, succs in head["blocks"]:
            raw = data[at:at + nraw]
            at += nraw
            nwords = RECORD * len(ks)
            words = data[at:at + nwords]
            at += nwords
            if len(raw) != nraw or len(words) != nwords:
                return None
            out[start] = (end, fault, raw, [names[k] for k in ks], words, succs)
        return out
    except (ValueError, KeyError, TypeError, IndexError, struct.error):
        return None
