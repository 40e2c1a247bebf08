"""The persistent translation cache: LLVM object code on disk, keyed by what shapes it.

A key is a hash of the guest code bytes and block shapes of a module, the tier that compiles it,
the lifter's knobs, jitbt's version, LLVM's version and the host CPU the code is generated for
(translator/host.py; ``module_key``). The object code MCJIT
produced for that module is stored under the key; a later run that translates the same code loads
the object file instead of lifting, optimising and compiling again::

    store = ObjectStore.default()              # $XDG_CACHE_HOME/jitbt (or ~/.cache/jitbt)
    data = store.get(key)                      # bytes, or None (absent, or corrupt: removed)
    store.put(key, object_code)

Files are written to a temporary name and renamed into place, so runs sharing the cache never see
a half-written file; each file carries a SHA-256 of its contents, so a corrupt or truncated file
is detected, removed and rebuilt, never handed to the loader.
"""
from __future__ import annotations

import itertools
import marshal
import os
import threading

import llvmlite

from . import host

try:                          # CPython's own BLAKE2: hashlib loads OpenSSL, 3 ms of every start
    from _blake2 import blake2b as _blake2b
except ImportError:           # (a Python built without it)
    from hashlib import blake2b as _blake2b


_TMP = itertools.count()


def write_file(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in its folder (made if missing) renamed
    into place, so that a run reading it never sees half of it. The temporary name is the
    process's and thread's own: tempfile.mkstemp's import and random names cost a first run
    about 10 ms (hello world stores some 50 files)."""
    folder = os.path.dirname(path)
    tmp = f"{folder}/.tmp-{os.getpid()}-{threading.get_ident()}-{next(_TMP)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def encode(value) -> bytes:
    """The structured part of a stored entry (lists, dicts, strings, numbers, bytes, None: region
    shapes, interpreter records' index, a handler library chunk's index) as bytes: marshal's,
    behind a tag. marshal is built in: json's import and the regular expressions it compiles
    were 2-3 ms of every start (parsing is as fast either way: 0.4 ms a handler chunk's index).
    (Entries are read only once their digest matched: what `decode` sees was made here.)"""
    return _TAG + marshal.dumps(value, 4)


def decode(data: bytes):
    """The value `encode` made of `data`; ValueError when it is not one (an entry in another
    format, such as the JSON of jitbt before the twenty-fourth round)."""
    if data[:len(_TAG)] != _TAG:
        raise ValueError("not a stored value")
    try:
        return marshal.loads(data[len(_TAG):])
    except (EOFError, TypeError, MemoryError) as e:
        raise ValueError(f"not a stored value: {e}") from None


_TAG = b"m4"               # (marshal's format 4)


def new_hash(data: bytes = b""):
    """The hash of every key and stored digest of the persistent store and the handler library:
    BLAKE2b of DIGEST bytes."""
    return _blake2b(data, digest_size=32)


MAGIC = b"JITBTOB2"
DIGEST = 32
_BASES: dict = {}       # (version, base) -> the hash of both, to be copied
SUFFIX = ".o"           # object code; region shapes (translator/__init__.py) are ".shape"
RUNTIME = ".rt"         # object code of the runtime's own modules (the dispatcher)


def default_folder() -> str:
    """jitbt's cache folder. (Paths here are strings: importing pathlib, with urllib.parse and
    ipaddress behind it, was 3 ms of every start.)"""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jitbt")


def module_key(parts: list, version: str, base: tuple = ()) -> str:
    """The key of a module: `base` and `parts` describe everything that shapes its code
    (`base`: what is the same for every module of a run, hashed once and reused)."""
    start = _BASES.get((version, base))
    if start is None:
        start = new_hash(f"jitbt {version} llvmlite {llvmlite.__version__}\0"
                         f"{host.identity()}\0".encode())
        for p in base:
            start.update(p if isinstance(p, bytes) else repr(p).encode())
            start.update(b"\0")
        _BASES[(version, base)] = start
    h = start.copy()
    for p in parts:
        h.update(p if isinstance(p, bytes) else repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()


class ObjectStore:
    def __init__(self, folder: str | os.PathLike):
        self.folder = os.fspath(folder)
        self._objects = os.path.join(self.folder, "objects")
        self.hits = self.misses = self.stored = self.corrupt = 0

    @classmethod
    def default(cls) -> "ObjectStore":
        return cls(default_folder())

    def _path(self, key: str, suffix: str = SUFFIX) -> str:
        return f"{self._objects}/{key[:2]}/{key}{suffix}"      # strings: pathlib is slow here

    def has(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def get(self, key: str, suffix: str = SUFFIX) -> bytes | None:
        """The payload stored under `key`: object code, or with another suffix another kind of
        entry (those lookups leave the statistics, which are about object code, alone)."""
        count = suffix == SUFFIX
        path = self._path(key, suffix)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            self.misses += count
            return None
        payload = data[len(MAGIC) + DIGEST:]
        if (not data.startswith(MAGIC) or len(data) < len(MAGIC) + DIGEST
                or new_hash(payload).digest() != data[len(MAGIC):len(MAGIC) + DIGEST]):
            self.corrupt += 1
            self.misses += count
            try:
                os.unlink(path)
            except OSError:
                pass
            return None
        self.hits += count
        return payload

    def put_changed(self, key: str, payload: bytes, suffix: str) -> None:
        """put, unless the entry holds this payload already (a warm run met the same shapes
        the run before stored: writing them again cost a temporary file and a rename each)."""
        if self.get(key, suffix) != payload:
            self.put(key, payload, suffix)

    def put(self, key: str, payload: bytes, suffix: str = SUFFIX) -> None:
        count = suffix == SUFFIX
        path = self._path(key, suffix)
        try:
            write_file(path, MAGIC + new_hash(payload).digest() + payload)
            self.stored += count
        except OSError:
            pass           # a cache that cannot be written is only a slower run

    def info(self) -> dict[str, tuple[int, int]]:
        """{kind of entry (its suffix: ".o" object code, ".shape" region shapes, ".rec"
        interpreter records): (number of entries, bytes)}."""
        out: dict[str, tuple[int, int]] = {}
        for path in self._entries():
            name = os.path.basename(path)
            if name.startswith(".tmp-"):
                continue
            suffix = os.path.splitext(name)[1]
            n, size = out.get(suffix, (0, 0))
            try:
                out[suffix] = (n + 1, size + os.stat(path).st_size)
            except OSError:
                pass
        return out

    def _entries(self) -> list[str]:
        """The paths of every file in the store's objects folders."""
        out = []
        try:
            folders = sorted(os.scandir(self._objects), key=lambda e: e.name)
        except OSError:
            return out
        for folder in folders:
            if folder.is_dir():
                try:
                    out += sorted(e.path for e in os.scandir(folder.path) if e.is_file())
                except OSError:
                    pass
        return out

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        n = 0
        for path in self._entries():
            try:
                os.unlink(path)
                n += 1
            except OSError:
                pass
        return n
