"""The Dockerfile builds a small, non-root image that runs `edgeserve serve` on 0.0.0.0:8080."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def env_values(stage: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, args in stage:
        if keyword == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                values[name] = value
    return values


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form instruction; fails the test for shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"not exec form (JSON array): {args}")
    assert isinstance(value, list), args
    assert all(isinstance(item, str) for item in value), args
    return value


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def runtime(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return final_stage(instructions)


def test_hadolint_passes(hadolint_bin: str) -> None:
    result = subprocess.run(
        [hadolint_bin, str(DOCKERFILE)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_is_multi_stage(instructions: list[tuple[str, str]]) -> None:
    stages = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(stages) >= 2, stages


def test_base_image_is_a_pinned_python_311_slim_bookworm(
    instructions: list[tuple[str, str]],
) -> None:
    args = {}
    for keyword, rest in instructions:
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
    for keyword, rest in instructions:
        if keyword != "FROM":
            continue
        image = rest.split()[0]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image


def test_builder_installs_the_lock_without_resolving(instructions: list[tuple[str, str]]) -> None:
    runs = [args for keyword, args in instructions if keyword == "RUN"]
    assert any(
        "pip install" in run and "--no-deps" in run and "-r requirements.lock" in run
        for run in runs
    ), runs


def test_runtime_runs_as_non_root_user(runtime: list[tuple[str, str]]) -> None:
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage has no USER instruction"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, users[-1]


def test_runtime_exposes_port_8080(runtime: list[tuple[str, str]]) -> None:
    exposed = [port for keyword, args in runtime if keyword == "EXPOSE" for port in args.split()]
    assert "8080" in exposed or "8080/tcp" in exposed, exposed


def test_runtime_listens_on_all_interfaces(runtime: list[tuple[str, str]]) -> None:
    env = env_values(runtime)
    assert env.get("HOST") == "0.0.0.0", env
    assert env.get("PORT") == "8080", env


def test_runtime_metrics_dir_is_under_tmp(runtime: list[tuple[str, str]]) -> None:
    env = env_values(runtime)
    assert env.get("PROMETHEUS_MULTIPROC_DIR", "").startswith("/tmp/"), env


def test_healthcheck_probes_healthz_with_python(runtime: list[tuple[str, str]]) -> None:
    checks = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    _, _, command = checks[0].partition("CMD")
    argv = exec_form(command.strip())
    assert argv[0] in {"python", "python3"}, argv
    assert "/healthz" in " ".join(argv), argv


def test_entrypoint_runs_edgeserve_serve_in_exec_form(runtime: list[tuple[str, str]]) -> None:
    entrypoints = [exec_form(args) for keyword, args in runtime if keyword == "ENTRYPOINT"]
    commands = [exec_form(args) for keyword, args in runtime if keyword == "CMD"]
    assert entrypoints, "the runtime stage has no ENTRYPOINT"
    argv = entrypoints[-1] + (commands[-1] if commands else [])
    assert argv[:2] == ["edgeserve", "serve"], argv


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(candidate, glob) for candidate in candidates):
            excluded = not negate
    return excluded


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_build_context_holds_everything_the_dockerfile_copies(
    instructions: list[tuple[str, str]],
    ignore_patterns: list[str],
) -> None:
    sources = []
    for keyword, args in instructions:
        if keyword != "COPY" or "--from=" in args:
            continue
        words = [word for word in args.split() if not word.startswith("--")]
        sources += words[:-1]
    assert sources
    ignored = [src for src in sources if dockerignore_excludes(ignore_patterns, src.strip("/"))]
    assert not ignored, ignored


@pytest.mark.parametrize("path", [".venv/bin/python", ".git/HEAD", "tests/conftest.py"])
def test_build_context_leaves_out_local_files(ignore_patterns: list[str], path: str) -> None:
    assert dockerignore_excludes(ignore_patterns, path), path
