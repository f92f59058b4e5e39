"""Docs are part of the check: every command is in the README; the Quick start is what CI runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from typer.main import get_command

from paymobctl.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def leaf_commands() -> list[str]:
    found: list[str] = []

    def walk(cmd: Any, prefix: list[str]) -> None:
        ctx = cmd.context_class(cmd, info_name=prefix[-1])
        names = cmd.list_commands(ctx) if hasattr(cmd, "list_commands") else []
        if not names or getattr(cmd, "invoke_without_command", False):
            found.append(" ".join(prefix))
        for name in names:
            walk(cmd.get_command(ctx, name), [*prefix, name])

    walk(get_command(app), ["paymobctl"])
    return found


def test_every_command_appears_in_readme() -> None:
    missing = [c for c in leaf_commands() if f"`{c}" not in README]
    assert not missing, f"commands missing from README: {missing}"


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)


def test_quick_start_has_exactly_two_commands() -> None:
    blocks = quick_start_commands()
    assert len(blocks) == 2
    assert all("\n" not in block for block in blocks), "each Quick start command is one line"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = quick_start_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci


def test_root_help_lists_every_exit_code_the_readme_lists() -> None:
    from paymobctl.cli.app import HELP
    from paymobctl.errors import ExitCode

    section = README.split("## Global options and exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, flags=re.M)}
    assert documented == {int(code) for code in ExitCode}
    listed = HELP.split("Exit codes:", 1)[1]
    assert all(re.search(rf"\b{code} ", listed) for code in documented)


def test_readme_and_help_agree_on_sandbox_admin_options() -> None:
    from paymobctl.cli.sandbox_cmd import app as sandbox_app

    group = get_command(sandbox_app)
    ctx = group.context_class(group, info_name="sandbox")
    for name in ("callbacks", "deliveries"):
        command = group.get_command(ctx, name)  # type: ignore[attr-defined]
        line = next(x for x in README.splitlines() if f"`paymobctl sandbox {name} [" in x)
        own = {
            opt
            for param in command.params
            for opt in param.opts
            if opt.startswith("--") and opt not in GLOBAL
        }
        assert own == set(re.findall(r"\[(--[a-z-]+)", line)), (name, own, line)


GLOBAL = {"--profile", "--config", "--db", "--json", "--no-color", "--help"}


def test_user_facing_text_names_no_unshipped_file() -> None:
    package = ROOT / "paymobctl"
    for path in package.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            # config.example.toml lives in the repository, not in the installed package.
            assert "config.example.toml" not in code, f"{path}:{number}"
