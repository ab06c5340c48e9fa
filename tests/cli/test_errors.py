"""The real `edgeserve` process: failures are one line on stderr, no traceback, right exit code."""

from __future__ import annotations

import subprocess
import sys

from tests.support.server import REPO


def edgeserve(*args: str, env_token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    if env_token:
        env["ADMIN_TOKEN"] = env_token
    return subprocess.run(
        [sys.executable, "-m", "edgeserve", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_an_unreachable_server_is_one_line_exit_1_without_traceback(down_url):
    done = edgeserve("admin", "config", "get", "--url", down_url)
    assert done.returncode == 1, done
    assert done.stderr.splitlines() == [
        f'error: cannot reach {down_url} (connection refused): is "edgeserve serve" running?'
    ], done.stderr
    assert done.stdout == "", done.stdout


def test_a_bad_option_value_is_one_line_exit_2(down_url):
    done = edgeserve("admin", "shift", "150", "--url", down_url)
    assert done.returncode == 2, done
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Invalid value for 'percent'" in lines[0], lines
    assert "edgeserve admin shift --help" in lines[0], lines


def test_an_unknown_command_is_one_line_exit_2():
    done = edgeserve("admin", "launch")
    assert done.returncode == 2, done
    assert done.stderr.splitlines() == [
        "error: No such command 'launch'. (see 'edgeserve admin --help')"
    ], done.stderr


def test_the_token_from_the_environment_never_shows_in_output(server):
    secret = "wrong-but-secret-token-3333"
    done = edgeserve("admin", "warmup", "--url", server.url, env_token=secret)
    assert done.returncode == 1, done
    assert "401" in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert secret not in done.stdout + done.stderr


def test_the_token_given_as_an_option_never_shows_in_output(server):
    secret = "wrong-but-secret-token-4444"
    done = edgeserve("smoke", "--url", server.url, "--token", secret)
    assert done.returncode == 1, done
    assert secret not in done.stdout + done.stderr
