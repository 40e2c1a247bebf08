"""``jitbt conformance`` as a user runs it (the table, --json, --only, --list, the exit status), and
the list of covered forms kept in the repository (translator/conformance/forms.txt) against the
tables it is generated from."""
from __future__ import annotations

import io
import json

from conftest import ROOT, run_jitbt
from runtime.cli import main
from translator.conformance import forms_int, report

FORMS_TXT = ROOT / "translator" / "conformance" / "forms.txt"


def test_table_for_add():
    p = run_jitbt("conformance", "--only", "^add ")
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()
    assert p.stderr == b""
    total = next(line for line in out.splitlines() if "total" in line)
    forms, vectors, mismatches, *_ = [int(c.strip().replace(",", ""))
                                      for c in total.strip("│ ").split("│")[1:]]
    assert forms == 29 and vectors > forms * 10 and mismatches == 0
    assert "0 mismatches on defined state" in out
    assert "integer" in out and "SSE" in out and "x87" in out


def test_json_for_add():
    p = run_jitbt("conformance", "--only", "^add ", "--json")
    assert p.returncode == 0, p.stderr.decode()
    data = json.loads(p.stdout)
    assert data["ok"] is True and data["only"] == "^add "
    total = data["total"]
    assert total["forms"] == 29 and total["vectors"] > 0
    assert total["mismatches"] == 0 and total["errors"] == 0 and data["failures"] == []
    families = {f["family"]: f for f in data["families"]}
    assert families["integer"]["forms"] == 29 and families["SSE"]["forms"] == 0
    assert sum(f["vectors"] for f in families.values()) == total["vectors"]


def test_the_interpreter_through_the_command():
    p = run_jitbt("conformance", "--only", "^(add|shl|pshufd) ", "--tier", "interp", "--json")
    assert p.returncode == 0, p.stderr.decode()
    data = json.loads(p.stdout)
    assert data["tier"] == "interp" and data["ok"] is True
    assert data["total"]["forms"] > 40 and data["total"]["mismatches"] == 0


def test_list_and_bad_arguments():
    p = run_jitbt("conformance", "--list", "--only", "^addps ")
    lines = [x for x in p.stdout.decode().splitlines() if not x.startswith("#")]
    assert p.returncode == 0 and lines
    assert all(x.split(None, 2)[:2] == ["SSE", "addps"] for x in lines)
    for args in (["--only", "("], ["--only", "no such form"]):
        p = run_jitbt("conformance", *args)
        assert p.returncode != 0 and p.stdout == b""
        assert p.stderr.decode().startswith("jitbt: --only") and b"Traceback" not in p.stderr


def test_forms_list_in_the_repository_matches_the_tables():
    expected = report.forms_list()
    assert FORMS_TXT.read_text() == expected, (
        "translator/conformance/forms.txt is out of date with the form tables; regenerate it "
        "with: jitbt conformance --list > translator/conformance/forms.txt")
    lines = [x for x in expected.splitlines() if not x.startswith("#")]
    assert len(lines) == len(set(lines)) == len(report.selected())
    assert {x.split()[0] for x in lines} == {"integer", "SSE", "x87", "MMX"}


def test_a_failing_form_is_a_row_and_fails_the_run(monkeypatch, capsys):
    """A form that raises is reported (errors), one that differs on defined state sets the exit
    status; neither reaches the user as a traceback."""
    real = forms_int.check

    def check(host, jit, case):
        if case[0].text == "add rcx, rdx":
            raise RuntimeError("semantic exploded")
        if case[0].text == "add r9, r14":
            result = real(host, jit, case)
            result.mismatches.append(({}, 0x202, "rcx: host 0x1 jit 0x2"))
            return result
        return real(host, jit, case)

    monkeypatch.setattr(forms_int, "check", check)
    rep = report.run(r"^add (rcx, rdx|r9, r14|ecx, edx)$")
    assert not rep.ok
    assert rep.total.forms == 3 and rep.total.errors == 1 and rep.total.mismatches == 1
    assert rep.total.failing_forms == 2
    errors = [f for f in rep.failures if f.error]
    assert [f.form for f in errors] == ["add rcx, rdx"]
    assert "RuntimeError: semantic exploded" in errors[0].detail
    buf = io.StringIO()
    report.print_table(rep, buf)
    assert "semantic exploded" in buf.getvalue() and "add r9, r14" in buf.getvalue()
    assert main(["conformance", "--only", "^add r9, r14$"]) == 1
    assert "rcx: host 0x1 jit 0x2" in capsys.readouterr().out
    assert main(["conformance", "--only", "^add ecx, edx$", "--json"]) == 0
