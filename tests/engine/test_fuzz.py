"""Mutated project files through what ``designer check`` does, in-process (issue 17): a few
thousand cases here; ``benchmarks/fuzz_projects.py`` runs 100,000 by hand."""

from __future__ import annotations

import pytest

from . import fuzzing


@pytest.mark.slow
def test_thousands_of_mutated_files_load_or_are_refused_with_a_message(tmp_path):
    out = fuzzing.run(5000, seed=17, folder=tmp_path)
    assert out.failures == []
    assert out.cases == 5000 and out.loaded > 300 and out.refused > 3000, out


def test_the_fuzzer_reports_a_crash_as_a_failure(tmp_path, monkeypatch):
    """The harness itself can fail: a loader that crashes on one kind of file is caught."""

    def crash(project):
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(fuzzing, "report", crash)
    out = fuzzing.run(200, seed=1, folder=tmp_path)
    assert out.failures and "UnicodeEncodeError" in out.failures[0]
