"""The part of `dataclasses` jitbt uses, without importing it.

Importing dataclasses imports inspect, and with it ast, dis, tokenize and linecache: 7-8 ms of
every jitbt start (hello world takes about 120 ms cold), for 15 record classes on the start-up
path. ``dataclass`` here makes the same classes from the same declarations (annotated fields in
order, defaults, ``field(default_factory=...)``, ``frozen`` and ``slots``): an ``__init__``
with those defaults, ``__repr__``, ``__eq__`` over the fields, and for a frozen class
``__hash__`` and no assignment after ``__init__`` (over the fields with ``compare`` left
true); ``fields`` and ``replace`` work as
dataclasses' do on them::

    @dataclass(frozen=True, slots=True)
    class Point:
        x: int
        y: int = 0
        tags: list = field(default_factory=list)

    p = replace(Point(1), y=2)          # Point(x=1, y=2, tags=[])
    [f.name for f in fields(p)]         # ['x', 'y', 'tags']

Not supported (nothing here uses them): ordering, ``init=False`` fields, ``InitVar``,
``ClassVar`` detection beyond skipping annotations spelled ``ClassVar``, keyword-only fields,
``__post_init__``, inheritance between records.
"""
from __future__ import annotations

_MISSING = object()
_FIELDS = "__plain_fields__"


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class Field:
    __slots__ = ("name", "default", "default_factory", "compare")

    def __init__(self, default=_MISSING, default_factory=_MISSING, compare: bool = True):
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.compare = compare          # part of __eq__ and __hash__?

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


def field(*, default=_MISSING, default_factory=_MISSING, compare: bool = True) -> Field:
    return Field(default, default_factory, compare)


def fields(obj) -> tuple[Field, ...]:
    """The fields of a record class or instance, in declaration order."""
    return getattr(obj, _FIELDS)


def replace(obj, **changes):
    """A new record like `obj` with some fields changed (through its __init__)."""
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {sorted(unknown)[0]!r}")
    values.update(changes)
    return type(obj)(**values)


def dataclass(cls=None, /, *, frozen: bool = False, slots: bool = False):
    """Make `cls` a record class (see the module's docstring); usable bare or with options."""
    def wrap(c):
        return _process(c, frozen, slots)
    return wrap if cls is None else wrap(cls)


def _process(cls, frozen: bool, slots: bool):
    annotations = cls.__dict__.get("__annotations__", {})
    flds = []
    for name, kind in annotations.items():
        if isinstance(kind, str) and kind.startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, _MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        f.name = name
        flds.append(f)
    seen_default = False
    for f in flds:
        has = f.default is not _MISSING or f.default_factory is not _MISSING
        if seen_default and not has:
            raise TypeError(f"non-default field {f.name!r} follows a default one")
        seen_default = seen_default or has

    env = {"_MISSING": _MISSING, "_set": object.__setattr__}
    params, body = [], []
    for f in flds:
        if f.default_factory is not _MISSING:
            env[f"_f_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            value = f"_f_{f.name}() if {f.name} is _MISSING else {f.name}"
        elif f.default is not _MISSING:
            env[f"_d_{f.name}"] = f.default
            params.append(f"{f.name}=_d_{f.name}")
            value = f.name
        else:
            params.append(f.name)
            value = f.name
        body.append(f"_set(self, {f.name!r}, {value})" if frozen else f"self.{f.name} = {value}")
    names = tuple(f.name for f in flds)
    getter = "".join(f"self.{f.name}, " for f in flds if f.compare)
    source = (f"def __init__(self, {', '.join(params)}):\n    "
              + ("\n    ".join(body) or "pass") + "\n"
              f"def _astuple(self):\n    return ({getter})\n")
    exec(source, env)           # (one __init__ with the fields as parameters: as fast as theirs)
    init, astuple = env["__init__"], env["_astuple"]

    def __repr__(self):
        return f"{type(self).__qualname__}(" + ", ".join(
            f"{n}={getattr(self, n)!r}" for n in names) + ")"

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return astuple(self) == astuple(other)

    namespace = dict(cls.__dict__)
    for f in flds:
        namespace.pop(f.name, None)    # (defaults live in __init__; slots forbid them here)
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    namespace.update({"__init__": init, "__repr__": __repr__, "__eq__": __eq__,
                      _FIELDS: tuple(flds)})
    if "__repr__" in cls.__dict__:
        namespace["__repr__"] = cls.__dict__["__repr__"]
    if frozen:
        def __setattr__(self, name, value):
            raise FrozenInstanceError(f"cannot assign to field {name!r}")

        def __delattr__(self, name):
            raise FrozenInstanceError(f"cannot delete field {name!r}")

        namespace.update({"__setattr__": __setattr__, "__delattr__": __delattr__,
                          "__hash__": lambda self: hash(astuple(self))})
    elif "__hash__" not in cls.__dict__:
        namespace["__hash__"] = None          # (mutable with __eq__: unhashable, as theirs)
    if slots:
        namespace["__slots__"] = names
    for f in flds:
        if not slots and f.default is not _MISSING:
            namespace[f.name] = f.default     # (class attribute, as dataclasses leaves it)
    return type(cls)(cls.__name__, cls.__bases__, namespace)
