"""The suite's re-run rule: only tests marked ``timing`` are re-run after a failure."""
from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_only_timing_tests_are_rerun(tmp_path):
    """A copy of our pytest.ini and conftest.py runs two tests that fail on their first try:
    the ``timing`` one is re-run and passes, the other fails the run."""
    (tmp_path / "pytest.ini").write_text((REPO / "pytest.ini").read_text().replace("testpaths = tests", "testpaths = ."))
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tmp_path / "test_first_try_fails.py").write_text(textwrap.dedent("""
        import pathlib
        import pytest

        def _first_try(name):
            mark = pathlib.Path(__file__).with_name(name)
            first = not mark.exists()
            mark.touch()
            return first

        @pytest.mark.timing
        def test_timing():
            assert not _first_try("timing.tried")

        def test_plain():
            assert not _first_try("plain.tried")
    """))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    summary = out.stdout.strip().splitlines()[-1]
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 failed" in summary and "1 passed" in summary and "1 rerun" in summary, out.stdout
    assert "FAILED test_first_try_fails.py::test_plain" in out.stdout
