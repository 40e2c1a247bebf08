"""The interpreter's decoding in native code (translator/native.c), with Python as fallback.

A cold run interprets every block it meets first (translator/interp.py), and what that costs is
decoding and making records: glibc's start-up alone is 900 blocks of 4,500 instructions, about
7 microseconds an instruction in Python (capstone's decoding 1.5 of them). The native helper
does a block in one call: capstone's decoding, the records' words and each instruction's shape
key as text. Python maps the keys to handlers (a dict lookup an instruction) and copies the
words into the block's record buffer::

    native = load()                 # None: no helper library (translator/native.py says when)
    made = native.interpret(library, fetch, address, limit, keys)
    # (Translation, bytes, successors), or None: decode the block in Python (decoder.py and
    # interp.interpret), which handles what the helper leaves to it

The helper leaves to Python what it does not make the same way, so the records of a block are
the same whichever path made them: instructions with rewrite rules, registers the translator
does not take, bytes that do not decode or were not all fetched, shapes the library lacks or
needs a handler per encoding for. tests/test_fastdec.py compares both paths on every block that
starts at an instruction of the guest programs. Without the helper library (translator/native.py)
the Python path does everything.
"""
from __future__ import annotations

import array
import ctypes

from .cache import Translation

KEYS_CAP = 1 << 16
R_GPR, R_XMM, R_ST, R_MM, R_RIP, R_FS, R_GS = range(1, 8)


class NativeDecoder:
    def __init__(self, lib, limit: int | None = None):
        from . import decoder, rewrite
        from .interp import END, RECORD, WORDS
        limit = limit or decoder.MAX_BLOCK_INSNS
        self.lib = lib                                  # (kept loaded while this is used)
        self.RECORD, self.WORDS, self.END = RECORD, WORDS, END
        self.MAX_INSN_LEN = decoder.MAX_INSN_LEN
        insn = decoder._lib.cs_malloc(decoder._HANDLE)
        if not insn:
            raise MemoryError("capstone could not allocate an instruction record")
        iter_fn = ctypes.cast(decoder._lib.cs_disasm_iter, ctypes.c_void_p).value
        layout = decoder._LAYOUT
        config = [iter_fn, decoder._HANDLE, insn,
                  *(layout["insn"][i] for i in (1, 2, 3, 4, 6)),    # address, size, bytes,
                  *layout["detail"], *layout["x86"], *layout["op"]]  # mnemonic, detail
        regs = bytearray(4 * 1024)
        for rid, (idx, size, high) in decoder.REGS.items():
            regs[4 * rid:4 * rid + 4] = bytes((R_GPR, idx, size, high))
        for table, cls, size in ((decoder.XMMS, R_XMM, 16), (decoder.STS, R_ST, 10),
                                 (decoder.MMS, R_MM, 8)):
            for rid, idx in table.items():
                regs[4 * rid:4 * rid + 4] = bytes((cls, idx, size, 0))
        regs[4 * decoder.RIP] = R_RIP
        for rid, name in decoder.SEGS.items():
            if name:
                regs[4 * rid] = R_FS if name == "fs" else R_GS
        rules = b"".join(m.encode() + b"\0" for m in rewrite.RULES)
        prefixes = b"".join(m.encode() + b"\0" for m in decoder.PREFIX_WORDS)
        lib.jb_init.restype = ctypes.c_int
        if lib.jb_init((ctypes.c_int64 * len(config))(*config), bytes(regs), 1024, rules,
                       len(rules), prefixes, len(prefixes)):
            raise ValueError("the native decoder refused its configuration")
        self.limit = limit
        self.words = ctypes.create_string_buffer((limit + 1) * RECORD)
        self.keys = ctypes.create_string_buffer(KEYS_CAP)
        self.info = (ctypes.c_uint64 * 8)()
        self._block = lib.jb_block
        self._block.restype = ctypes.c_long
        self._block.argtypes = (ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64, ctypes.c_long,
                                ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p)
        self._args = (ctypes.addressof(self.words), ctypes.addressof(self.keys), KEYS_CAP,
                      ctypes.addressof(self.info))
        self.keys_of: dict[bytes, str] = {}             # key text -> key
        self.handlers_of: dict[bytes, int] = {}         # ... -> its handler's address
        self.table_of = None                            # ... in this library
        self.blocks = 0                                 # blocks made here

    def block(self, code: bytes, address: int, limit: int):
        """(records' words with handler words 0, the instructions' shape keys as bytes, the
        end address, successors) of the block at the start of `code`, or None."""
        words, keys, cap, info = self._args
        n = self._block(code, len(code), address, limit, words, keys, cap, info)
        if n < 0:
            return None
        info = self.info
        return (ctypes.string_at(words, (n + 1) * self.RECORD),
                ctypes.string_at(keys, info[1]).split(b"\n"), info[0], info[3:3 + info[2]])

    def _learn(self, library, texts) -> bool:
        """Enter the key texts of `texts` that `library` has a handler for (one for the shape,
        not one a shape needs per encoding) into the tables; False if any is left out."""
        if self.table_of is not library:
            self.keys_of, self.handlers_of, self.table_of = {}, {}, library
        ok = True
        for text in texts:
            key = text.decode()
            h = library.addr.get(key)
            if h is None or key in library.static:
                ok = False
            else:
                self.keys_of[text], self.handlers_of[text] = key, h
        return ok

    def interpret(self, library, fetch, address: int, limit: int | None, keys: list):
        """(the interpreted Translation, the block's bytes, its successors) of the block at
        `address`, with each record's handler key appended to `keys`; None when the Python
        path must make it (nothing is appended then)."""
        limit = limit or self.limit
        if limit > self.limit:
            return None
        code = fetch(address, limit * self.MAX_INSN_LEN)
        if not code:
            return None
        made = self.block(code, address, limit)
        if made is None:
            return None
        words, texts, end, succs = made
        if self.table_of is not library:
            self._learn(library, ())
        handlers = [*map(self.handlers_of.get, texts), library.addr.get(self.END)]
        if None in handlers:
            if not self._learn(library, texts) or handlers[-1] is None:
                return None
            handlers = [*map(self.handlers_of.get, texts), handlers[-1]]
        buf = ctypes.create_string_buffer(words, len(words))
        memoryview(buf).cast("B").cast("Q")[::self.WORDS] = array.array("Q", handlers)
        keys += map(self.keys_of.__getitem__, texts)
        keys.append(self.END)
        self.blocks += 1
        return (Translation(address, max(end, address + 1), handlers[0], len(texts), "interp",
                            False, (), ctypes.addressof(buf), buf),
                code[:end - address], succs)


def load(limit: int | None = None) -> NativeDecoder | None:
    """The native decoder, or None without the helper library (translator/native.py)."""
    from . import native
    lib = native.library()
    if lib is None:
        return None
    try:
        return NativeDecoder(lib, limit)
    except (AttributeError, ValueError, MemoryError):
        return None
