"""``jitbt conformance``: run every instruction form of the tables (integer, SSE, x87, MMX) on the
host CPU and under jitbt, and report per family and in total the forms covered, the vectors run,
the mismatches on defined state, and apart from them the mismatches on flags the manual leaves
undefined and on the MXCSR and x87 exception bits (which jitbt does not model yet)::

    report = run(only=r"^add ")          # a Report; only: a regex searched in the form text
    print_table(report)                  # rich tables on stdout; as_json(report) for machines
    assert report.total.mismatches == 0

A form that fails with a Python exception (or runs fewer vectors than its family asks for) is
counted under ``errors`` and listed with the mismatching forms, never raised: the command reports
it as a row. ``forms_list()`` is the text of forms.txt, the list of covered forms kept in the
repository (tests/test_conformance_cli.py checks that it matches the tables).
"""
from __future__ import annotations

import re
import sys
import time
from dataclasses import asdict, dataclass, field

from . import forms_int, forms_mmx, forms_sse, forms_x87
from .harness import JitCPU
from .hostcpu import HostCPU

FAMILIES = (forms_int, forms_sse, forms_x87, forms_mmx)
LIST_HEADER = (
    "# The instruction forms jitbt proves against the host CPU: family, jitbt's semantic, form\n"
    "# (Intel syntax). Generated from translator/conformance/forms_*.py; regenerate with\n"
    "# jitbt conformance --list > translator/conformance/forms.txt\n")


@dataclass
class Totals:
    """The counts of one family (or of all): vectors are counted, mismatches are vectors."""
    family: str
    forms: int = 0
    vectors: int = 0
    mismatches: int = 0                  # vectors differing on defined state
    undefined_flag_mismatches: int = 0   # vectors differing on a flag the manual leaves undefined
    mxcsr_exception_mismatches: int = 0  # MXCSR bits 0-5
    x87_exception_mismatches: int = 0    # x87 status word bits 0-5
    errors: int = 0                      # forms that raised or ran too few vectors
    failing_forms: int = 0               # forms with a mismatch on defined state or an error

    def add(self, other: Totals) -> None:
        for name in ("forms", "vectors", "mismatches", "undefined_flag_mismatches",
                     "mxcsr_exception_mismatches", "x87_exception_mismatches", "errors",
                     "failing_forms"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Failure:
    """A form with a mismatch on defined state, or one that could not be run (error)."""
    family: str
    form: str
    mnemonic: str
    vectors: int
    mismatches: int
    detail: str                          # the first mismatching vector, or the exception
    error: bool = False


@dataclass
class Report:
    only: str | None
    families: list[Totals]
    total: Totals
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    level: str = "block"
    tier: str = "hot"

    @property
    def ok(self) -> bool:
        return not self.total.mismatches and not self.total.errors


def selected(only: str | None = None):
    """(family module, case) for every distinct form whose text matches `only` (re.search)."""
    pattern = re.compile(only) if only else None
    out = []
    for module in FAMILIES:
        seen = set()
        for case in module.ALL_FORMS:
            text = module.form_of(case).text
            if text in seen or (pattern and not pattern.search(text)):
                continue
            seen.add(text)
            out.append((module, case))
    return out


def forms_list(only: str | None = None) -> str:
    """The text of forms.txt: a header, then one line a form: family, semantic, form text."""
    lines = []
    for module, case in selected(only):
        form = module.form_of(case)
        lines.append(f"{module.FAMILY:<8} {form.mnemonic:<11} {form.text}")
    return LIST_HEADER + "".join(line + "\n" for line in lines)


def run_case(host, jit, module, case, totals: Totals, failures: list) -> None:
    """Run one form into `totals`; a mismatch or an exception becomes a Failure row."""
    form = module.form_of(case)
    totals.forms += 1
    try:
        result = module.check(host, jit, case)
    except Exception as e:          # noqa: BLE001 - reported as a row, never raised
        totals.errors += 1
        totals.failing_forms += 1
        failures.append(Failure(module.FAMILY, form.text, form.mnemonic, 0, 0,
                                f"{type(e).__name__}: {e}", error=True))
        return
    totals.vectors += result.vectors
    totals.mismatches += len(result.mismatches)
    totals.undefined_flag_mismatches += result.undefined_mismatches
    totals.mxcsr_exception_mismatches += result.mxcsr_flag_mismatches
    totals.x87_exception_mismatches += result.fpu_flag_mismatches
    if result.mismatches:
        totals.failing_forms += 1
        failures.append(Failure(module.FAMILY, form.text, form.mnemonic, result.vectors,
                                len(result.mismatches), _describe(result.mismatches[0])))
    elif result.vectors < module.MIN_VECTORS:
        totals.errors += 1
        totals.failing_forms += 1
        failures.append(Failure(module.FAMILY, form.text, form.mnemonic, result.vectors, 0,
                                f"only {result.vectors} vectors (at least {module.MIN_VECTORS})",
                                error=True))


def _describe(mismatch) -> str:
    """A mismatch is (regs, rflags, what differs[, exit code]): keep what differs and the flags."""
    _, rflags, what = mismatch[:3]
    return f"{what} (rflags in {rflags:#x})"


def run(only: str | None = None, progress: bool = False, level: str = "block",
        tier: str = "hot") -> Report:
    """Run the selected forms, one HostCPU and one JitCPU for all, jitbt at accuracy `level`
    (at datapath, undefined flags and exception bits count as mismatches) by `tier` (the
    optimising tier "hot", the cold one, or the interpreter "interp"); `progress` shows a
    rich progress bar on stderr."""
    from translator.knobs import knobs_for
    start = time.monotonic()
    cases = selected(only)
    host, jit = HostCPU(), JitCPU(knobs_for(level), tier=tier)
    per = {m.FAMILY: Totals(m.FAMILY) for m in FAMILIES}
    failures: list[Failure] = []
    if progress:
        from rich.console import Console
        from rich.progress import Progress
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("conformance", total=len(cases))
            for module, case in cases:
                bar.update(task, description=f"{module.FAMILY}: {module.form_of(case).text[:40]}")
                run_case(host, jit, module, case, per[module.FAMILY], failures)
                bar.advance(task)
    else:
        for module, case in cases:
            run_case(host, jit, module, case, per[module.FAMILY], failures)
    total = Totals("total")
    for t in per.values():
        total.add(t)
    return Report(only, list(per.values()), total, failures, time.monotonic() - start, level,
                  tier)


COLUMNS = (("family", "family"), ("forms", "forms"), ("vectors", "vectors"),
           ("mismatches", "mismatches\n(defined)"),
           ("undefined_flag_mismatches", "undefined\nflags"),
           ("mxcsr_exception_mismatches", "MXCSR\nexceptions"),
           ("x87_exception_mismatches", "x87\nexceptions"), ("errors", "errors"))


TIERS = {"hot": "optimising tier", "cold": "cold tier", "interp": "interpreter"}


def print_table(report: Report, file=None) -> None:
    """The totals table, then the failing forms (if any), on `file` (default stdout)."""
    from rich.console import Console
    from rich.table import Table
    console = Console(file=file or sys.stdout)
    if not console.is_terminal:
        console = Console(file=file or sys.stdout, width=120)
    title = (f"jitbt conformance against the host CPU (accuracy {report.level}, "
             f"{TIERS[report.tier]})")
    if report.only:
        title += f" (forms matching {report.only!r})"
    table = Table(title=title, title_justify="left")
    for name, header in COLUMNS:
        table.add_column(header, justify="left" if name == "family" else "right")
    for i, t in enumerate([*report.families, report.total]):
        row = [t.family] + [f"{getattr(t, name):,}" for name, _ in COLUMNS[1:]]
        table.add_row(*row, end_section=i == len(report.families) - 1,
                      style="bold" if t is report.total else None)
    console.print(table)
    if report.failures:
        bad = Table(title="failing forms", title_justify="left")
        for header in ("family", "form", "vectors", "mismatches", "first difference / error"):
            bad.add_column(header, overflow="fold")
        for f in report.failures:
            bad.add_row(f.family, f.form, f"{f.vectors:,}",
                        "error" if f.error else f"{f.mismatches:,}", f.detail)
        console.print(bad)
    verdict = ("0 mismatches on defined state" if report.ok else
               f"{report.total.failing_forms} of {report.total.forms} forms fail")
    console.print(f"{verdict}: {report.total.forms:,} forms, {report.total.vectors:,} vectors "
                  f"in {report.seconds:.1f} s.\n"
                  + ("Undefined flags and exception bits are compared too (datapath)."
                     if report.level == "datapath" else
                     "Undefined flags and exception bits are counted apart: they do not fail "
                     "the run (they do at --accuracy datapath)."))


def as_json(report: Report) -> dict:
    """The report as plain data (what ``--json`` prints)."""
    return {"only": report.only, "level": report.level, "tier": report.tier, "ok": report.ok,
            "seconds": round(report.seconds, 3),
            "families": [asdict(t) for t in report.families], "total": asdict(report.total),
            "failures": [asdict(f) for f in report.failures]}
