"""jitbt's own native helpers (translator/native.c), for work Python does an item at a time on
every run's path: the interpreter's decoding (translator/fastdec.py) and the relocations of the
object code a run loads (translator/objload.py).

`make native` builds the library with gcc (no capstone or Python headers needed). Every helper
has a Python path beside it that does the same and stays the reference; the tests compare the
two (tests/test_fastdec.py, tests/test_objload.py). Without the library (not built, built for
another ABI, or JITBT_NATIVE=off in the environment) the Python paths do everything::

    lib = native.library()      # a ctypes library (the GIL held during calls), or None
"""
from __future__ import annotations

import ctypes
import os

ABI = 3
LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libjitbt_native.so")
_lib: object = False


def library():
    """The native helpers' library, loaded once; None when it is not there or not wanted."""
    global _lib
    if _lib is False:
        _lib = None
        if os.environ.get("JITBT_NATIVE") != "off" and os.path.exists(LIBRARY):
            try:
                lib = ctypes.PyDLL(LIBRARY)    # (keeps the GIL: capstone's handle is shared)
                lib.jb_abi.restype = ctypes.c_int
                if lib.jb_abi() == ABI:
                    _lib = lib
            except (OSError, AttributeError):
                pass
    return _lib


def state() -> str:
    """What --stats says of the helpers."""
    if os.environ.get("JITBT_NATIVE") == "off":
        return "off (JITBT_NATIVE=off): decoding and relocation in Python"
    if library() is not None:
        return f"loaded ({os.path.basename(LIBRARY)})"
    if os.path.exists(LIBRARY):
        return f"{os.path.basename(LIBRARY)} is another version: run `make native`"
    return "not built (`make native`): decoding and relocation in Python"
