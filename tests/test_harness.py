"""The suite's own harness: its children handle signals as under a terminal, wherever
the suite was started from, and never outlive the test that started them."""

import os
import signal
import subprocess
import sys
import textwrap

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


def pytest_in_a_child(args, ignore_sigint=False, cwd=ROOT, timeout=120) -> subprocess.CompletedProcess:
    """pytest ``args`` in a fresh interpreter in ``cwd``, with SIGINT ignored as in a
    shell's background job when asked."""
    code = (
        "import signal, sys, pytest\n"
        + ("signal.signal(signal.SIGINT, signal.SIG_IGN)\n" if ignore_sigint else "")
        + f"sys.exit(pytest.main({['-q', '-p', 'no:cacheprovider', *args]!r}))"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_ctrl_c_tests_pass_when_the_suite_starts_with_sigint_ignored():
    test = os.path.join(TESTS, "test_hostile_input.py") + "::test_ctrl_c_while_waiting_for_a_fifo_writer"
    result = pytest_in_a_child([test], ignore_sigint=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_child_of_a_failing_test_is_killed(tmp_path):
    pid_file = tmp_path / "pid"
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {TESTS!r})\n"
        "from helpers import _kill_what_is_left, _kill_what_the_test_started  # noqa: F401\n"
    )
    (tmp_path / "test_leaves_a_child.py").write_text(
        textwrap.dedent(
            f"""
            import sys
            from helpers import spawn

            def test_fails():
                child = spawn([sys.executable, "-c", "import time; time.sleep(300)"])
                open({str(pid_file)!r}, "w").write(str(child.pid))
                assert False, "this test fails on purpose"
            """
        )
    )
    result = pytest_in_a_child([str(tmp_path), "--rootdir", str(tmp_path)], cwd=tmp_path)
    assert result.returncode == 1 and "this test fails on purpose" in result.stdout, result.stdout + result.stderr
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # gone, as it should be
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"the failing test's child {pid} was still running")
