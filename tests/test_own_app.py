"""README "Point your own app at the sandbox", run as written against the guide's Django backend.

The commands are read from the README section itself; the only changes are the ports (the test
takes free ones) and running the app in-process instead of `manage.py runserver`. With the
guide's verification right, the webhooks are verified and the deposit is paid; with the
`str(True)` bug switched on, simulate and checklist name the bug.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from . import django_site
from .conftest import Result, run_cli
from .servers import serve, start_paymobctl, stop_paymobctl

pytestmark = pytest.mark.slow

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
SANDBOX_DEFAULT, APP_DEFAULT = "http://127.0.0.1:8010", "http://127.0.0.1:8001"


def section_commands() -> list[str]:
    section = README.split("## Point your own app at the sandbox", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)\n```", section, flags=re.S)
    assert block is not None
    return [re.sub(r"\s+#\s.*$", "", line).strip() for line in block.group(1).splitlines()]


@dataclass
class Session:
    """A shell as the README's reader has one: variables, and what each paymobctl line printed."""

    app: str
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    sandbox: str | None = None
    process: subprocess.Popen[str] | None = None
    variables: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Result] = field(default_factory=dict)

    def expand(self, line: str) -> str:
        line = line.replace(APP_DEFAULT, self.app)
        if self.sandbox:
            line = line.replace(SANDBOX_DEFAULT, self.sandbox)
        for name, value in self.variables.items():
            line = line.replace(f'"${name}"', shlex.quote(value)).replace(f"${name}", value)
        return line

    def run(self, line: str) -> None:
        line = self.expand(line)
        if line == "paymobctl sandbox":
            self.process, self.sandbox = start_paymobctl("sandbox", self.tmp_path)
        elif line.startswith("export "):
            for pair in shlex.split(line)[1:]:
                name, value = pair.split("=", 1)
                self.monkeypatch.setenv(name, self.expand(value))
        elif line.startswith("python manage.py runserver"):
            pass  # the app already runs in-process (self.app)
        elif (found := re.fullmatch(r"(\w+)=\$\((curl .*) \| jq -r \.(\w+)\)", line)) is not None:
            self.variables[found.group(1)] = str(self.curl(found.group(2))[found.group(3)])
        elif line.startswith("paymobctl "):
            words = shlex.split(line)[1:]
            self.outputs[" ".join(words[:2])] = run_cli(*words)
        else:
            raise AssertionError(f"the test does not know how to run README line {line!r}")

    def curl(self, line: str) -> dict[str, object]:
        words = shlex.split(line)
        url = next(w for w in words if w.startswith("http"))
        headers = dict(
            h.split(": ", 1) for h in (words[i + 1] for i, w in enumerate(words) if w == "-H")
        )
        data = words[words.index("-d") + 1]
        response = httpx.post(url, content=data, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        parsed = response.json()
        assert isinstance(parsed, dict)
        return parsed


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    with serve(django_site.application(), lifespan="off") as app:
        shell = Session(app, tmp_path, monkeypatch)
        try:
            yield shell
        finally:
            if shell.process is not None:
                stop_paymobctl(shell.process)


def checklist_result(output: Result, check: str) -> str:
    line = next((ln for ln in output.stdout.splitlines() if check in ln), "")
    assert line, output.output
    return line


def test_readme_flow_with_the_guides_backend(session: Session) -> None:
    django_site.GUIDE.reset(boolean_bug=False)
    for line in section_commands():
        session.run(line)
    out = session.outputs

    paid = out["sandbox pay"]
    assert paid.code == 0, paid.output
    assert "APPROVED" in paid.stdout and "3-D Secure OTP answered" in paid.stdout
    assert f"browser redirected to {session.app}/api/payments/response/ (HTTP 200)" in paid.stdout
    assert "callback TRANSACTION" in paid.stdout and "callback TOKEN" in paid.stdout
    assert paid.stdout.count("delivered, HTTP 200") == 2
    deposits = list(django_site.GUIDE.deposits.values())
    assert [d["status"] for d in deposits] == ["paid"]  # the app verified the webhook and acted
    assert len(django_site.GUIDE.cards) == 1 and django_site.GUIDE.cards[0]["token"]
    assert ("TRANSACTION", 200) in django_site.GUIDE.webhooks

    saved = out["sandbox callbacks"]
    assert saved.code == 0 and "saved to profile 'sandbox'" in saved.stdout, saved.output
    assert "sandbox sends to" not in saved.stderr  # --save: the profile points at the app too
    simulated = out["simulate transaction"]
    assert simulated.code == 0, simulated.output
    assert "200 OK" in simulated.stdout
    assert ("TRANSACTION", 200) in django_site.GUIDE.webhooks[-1:]  # simulate reached the app
    checked = out[next(k for k in out if k.startswith("checklist"))]
    assert "pass" in checklist_result(checked, "PMB-HMAC-003").lower(), checked.stdout
    # Acceptance review: the README's flow no longer ends in a confusing "another port (8000)".
    assert "another port" not in checked.stdout, checked.stdout


def test_readme_flow_names_the_boolean_bug(session: Session) -> None:
    django_site.GUIDE.reset(boolean_bug=True)
    for line in section_commands():
        if line.startswith("paymobctl sandbox pay"):
            continue  # the payment works; its webhook is refused (checked in the test above)
        session.run(line)
    out = session.outputs
    simulated = out["simulate transaction"]
    assert simulated.code == 1, simulated.output
    assert "401" in simulated.stdout
    assert "diagnosis: your endpoint renders booleans as `True`" in simulated.stdout
    assert "Paymob sends `true`" in simulated.stdout and "secret" not in simulated.stdout
    key = next(k for k in out if k.startswith("checklist"))
    hmac_003 = checklist_result(out[key], "PMB-HMAC-003")
    assert "renders booleans as `True`" in hmac_003, out[key].stdout


def test_machine_readable_diagnosis(session: Session) -> None:
    django_site.GUIDE.reset(boolean_bug=True)
    for line in section_commands()[:4]:  # sandbox, variables, app, callbacks
        session.run(line)
    result = run_cli("--json", "simulate", "transaction")
    assert result.code == 1
    found = json.loads(result.stdout)["diagnosis"]
    assert found["matched"] == ["python-bool"] and found["tried"]["canonical"] == 401


def test_webhook_test_names_the_boolean_bug(session: Session) -> None:
    """Acceptance review (issue 19): `webhook test` diagnoses a receiver that rejects valid
    signed cases, as simulate and checklist do, in the human report and in --json."""
    django_site.GUIDE.reset(boolean_bug=True)
    for line in section_commands()[:4]:  # sandbox, variables, app, callbacks
        session.run(line)
    webhook = f"{session.app}/api/payments/webhook/"
    human = run_cli("webhook", "test", webhook)
    assert human.code == 1, human.output
    assert "diagnosis: your endpoint renders booleans as `True`" in human.output
    assert "fix: render booleans with 'true' if value else 'false'" in human.stdout
    machine = run_cli("--json", "webhook", "test", webhook)
    assert machine.code == 1
    found = json.loads(machine.stdout)["diagnosis"]
    assert found["matched"] == ["python-bool"] and found["tried"]["canonical"] == 401
    django_site.GUIDE.reset(boolean_bug=False)
    fixed = json.loads(run_cli("--json", "webhook", "test", webhook).stdout)
    assert fixed["diagnosis"] is None, fixed
