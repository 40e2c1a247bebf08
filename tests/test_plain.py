"""translator/plain.py against the standard library's dataclasses: the same declarations made
by both behave the same (construction and defaults, repr, equality and hashing, frozen
assignment, fields, replace, slots), so the record classes jitbt declares with it mean what a
reader of dataclasses expects."""
from __future__ import annotations

import dataclasses

import pytest

from translator import plain


def _declare(dc, field, frozen, slots):
    @dc(frozen=frozen, slots=slots)
    class Rec:
        a: int
        b: str = "x"
        c: list = field(default_factory=list)
        d: object = field(default=None, compare=False)

        def total(self) -> int:
            return self.a + len(self.c)

        @property
        def twice(self) -> int:
            return 2 * self.a
    return Rec


KINDS = [(frozen, slots) for frozen in (False, True) for slots in (False, True)]


@pytest.mark.parametrize("frozen,slots", KINDS)
def test_records_behave_as_dataclasses(frozen, slots):
    ref = _declare(dataclasses.dataclass, dataclasses.field, frozen, slots)
    rec = _declare(plain.dataclass, plain.field, frozen, slots)
    for cls in (ref, rec):
        x, y = cls(1), cls(1, "y", [2], d="ignored")
        assert (x.a, x.b, x.c, x.d) == (1, "x", [], None)
        assert (y.total(), y.twice) == (2, 2)
        assert x.c is not cls(1).c                         # a new list each time
        assert cls(1, d=1) == cls(1, d=2) and cls(1) != cls(2) and cls(1) != (1, "x", [], None)
        assert [f.name for f in (dataclasses.fields if cls is ref else plain.fields)(x)] == \
            ["a", "b", "c", "d"]
        z = (dataclasses.replace if cls is ref else plain.replace)(y, b="z")
        assert (z.a, z.b, z.c, z.d) == (1, "z", [2], "ignored") and type(z) is cls
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            (dataclasses.replace if cls is ref else plain.replace)(x, nope=1)
        assert hasattr(x, "__dict__") != slots
    assert repr(rec(1)).split("(", 1)[1] == repr(ref(1)).split("(", 1)[1]
    if frozen:
        for cls, error in ((ref, dataclasses.FrozenInstanceError),
                           (rec, plain.FrozenInstanceError)):
            x = cls(1)
            with pytest.raises(error):
                x.a = 2
            with pytest.raises(AttributeError):
                del x.b
        # hashable, over the compared fields (c is a list: a tuple key stands in for it)
        assert hash(rec(1, c=())) == hash(rec(1, c=(), d=5))
    else:
        with pytest.raises(TypeError):
            hash(rec(1))                                   # eq without frozen: unhashable
        x = rec(1)
        x.a = 3
        assert x.a == 3 and x.twice == 6
