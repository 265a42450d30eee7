"""The suite's own rules, from tests/conftest.py: the ``unit`` marker, and no skips under CI.

Each test runs a small suite with the real hooks of tests/conftest.py and reads its outcome.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

HOOKS = """
import pytest

from tests.conftest import (
    pytest_collection_modifyitems,
    pytest_make_collect_report,
    pytest_runtest_makereport,
)


@pytest.fixture
def redis_server():
    return "redis://127.0.0.1:1"


@pytest.fixture
def through_redis(redis_server):
    return redis_server
"""

MARKERS = """
[pytest]
markers =
    unit: uses no service fixture
    allow_skip: may skip under CI
"""

SKIPPING = """
import pytest


@pytest.fixture
def sshd():
    pytest.skip("sshd is not installed")


def test_passes():
    pass


def test_skips_in_its_body():
    pytest.skip("virt-install is not installed")


@pytest.mark.skipif(True, reason="libvirtd does not answer")
def test_skipped_by_a_mark():
    pass


def test_skipped_by_a_fixture(sshd):
    pass


@pytest.mark.allow_skip
def test_allowed_to_skip():
    pytest.skip("allowed")


@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_to_fail():
    assert False
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(HOOKS)
    pytester.makeini(MARKERS)
    return pytester


@pytest.mark.parametrize("value", ["true", "1"])
def test_under_ci_every_skip_fails_with_its_reason(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    suite.makepyfile(SKIPPING)
    result = suite.runpytest("-ra")
    # A skip in setup (a mark or a fixture) becomes an error, one in the test body a failure.
    result.assert_outcomes(passed=1, failed=1, errors=2, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*skipped under CI, where every part is installed: Skipped: virt-install*",
            "*skipped under CI, where every part is installed: Skipped: libvirtd does not answer*",
            "*skipped under CI, where every part is installed: Skipped: sshd is not installed*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_outside_ci_a_skip_stays_a_skip(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    suite.makepyfile(SKIPPING)
    result = suite.runpytest()
    result.assert_outcomes(passed=1, skipped=4, xfailed=1)
    assert result.ret == pytest.ExitCode.OK


def test_under_ci_a_module_skipped_whole_is_an_error(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    suite.makepyfile(
        'import pytest\npytest.skip("no PostgreSQL", allow_module_level=True)\n'
        "def test_never_runs():\n    pass\n"
    )
    result = suite.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*skipped under CI*no PostgreSQL*"])


def test_unit_selects_only_the_tests_that_reach_no_service(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        def test_pure():
            pass

        def test_on_redis(redis_server):
            pass

        def test_on_redis_through_another_fixture(through_redis):
            pass
        """
    )
    result = suite.runpytest("-m", "unit", "-v")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*::test_pure PASSED*"])
