"""Issue 10 part 5: the checklist's field-shift forgery probe (PMB-HMAC-005) and redirect loops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paymobctl import checklist, config
from paymobctl.receiver import create_app as create_receiver
from paymobctl.store import Store

from . import django_site
from .conftest import run_cli
from .inprocess import in_process


@pytest.fixture(scope="module")
def django_url() -> Iterator[str]:
    with in_process(django_site.application(), lifespan="off") as base:
        yield base


@pytest.fixture
def profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", django_site.SECRET)


def run(url: str, *args: str) -> Any:
    return run_cli("checklist", url, "--no-api", "--timeout", "5", "--json", *args)


def checks(result: Any) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in result.json()["checks"]}


def test_the_forgery_keeps_the_signature_and_cannot_move_money() -> None:
    settings = config.resolve(environ={"PAYMOB_HMAC_SECRET": django_site.SECRET})
    probe = checklist.make_probe()
    callback = checklist.probe_callback(probe, settings)
    forged = checklist.field_shift_forgery(callback.body, checklist.forged_order_id(probe))
    obj = forged["obj"]
    assert obj["order"] == checklist.forged_order_id(probe) >= 999_900_000_000
    assert str(obj["owner"]) == f"{probe.order_id}{callback.obj['owner']}"
    assert obj["success"] is False and obj["pending"] is False  # a declined probe
    # The signed concatenation is unchanged: a lenient verifier accepts the original signature.
    assert django_site.lenient_digest(obj, django_site.SECRET) == callback.sign(django_site.SECRET)
    assert callback.body["obj"]["order"]["id"] == probe.order_id  # the original is untouched


def test_a_receiver_without_shape_checks_fails_the_forgery_check(
    django_url: str, profile: None
) -> None:
    result = run(f"{django_url}/fieldshift")
    assert result.code == 1
    found = checks(result)
    assert found["PMB-HMAC-003"]["status"] == "pass"  # it does verify HMACs...
    forgery = found["PMB-HMAC-005"]
    assert forgery["status"] == "fail" and forgery["severity"] == "critical"  # ...but not shapes
    assert "forgery was accepted" in forgery["detail"]
    assert forgery["hint"].startswith(
        "check the shape of every signed field (obj.order must be an object"
    )


def test_a_receiver_checking_shapes_passes_the_forgery_check(
    django_url: str, profile: None
) -> None:
    result = run(f"{django_url}/good")
    assert result.code == 0, result.output
    forgery = checks(result)["PMB-HMAC-005"]
    assert forgery["status"] == "pass" and "HTTP 400" in forgery["detail"]


def test_with_another_secret_the_forgery_check_is_inconclusive(
    django_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", "not-the-deployments-secret")
    forgery = checks(run(f"{django_url}/good"))["PMB-HMAC-005"]
    assert forgery["status"] == "skip" and "inconclusive" in forgery["detail"]


def test_a_redirect_loop_on_the_webhook_path_is_a_failure(django_url: str, profile: None) -> None:
    result = run(f"{django_url}/loop")
    assert result.code == 1
    found = checks(result)
    net = found["PMB-NET-002"]
    assert net["status"] == "fail" and net["severity"] == "critical"
    assert "redirect loop" in net["detail"]
    assert "/loop/api/payments/webhook/ → /loop/api/payments/webhook" in net["detail"]
    assert "redirect rules" in net["hint"]
    assert {found[c]["status"] for c in checklist.HMAC_PROBES} == {"skip"}


def test_listen_refuses_the_field_shift_forgery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "checklist-forgery-listen-secret"
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", secret)
    with Store(tmp_path / "listen.db") as store:
        with in_process(create_receiver(store=store, secret=secret)) as base:
            result = run(base)
        forgery = checks(result)["PMB-HMAC-005"]
        assert forgery["status"] == "pass", forgery
        assert any(e.status == 400 for e in store.events(limit=50))


def test_listen_answers_the_probes_today(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the forgery verdict, listen stores every probe and never crashes."""
    secret = "checklist-forgery-listen-secret"
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", secret)
    with Store(tmp_path / "listen.db") as store:
        with in_process(create_receiver(store=store, secret=secret)) as base:
            result = run(base)
        found = checks(result)
        assert found["PMB-HMAC-003"]["status"] == "pass"
        assert found["PMB-HMAC-005"]["status"] == "pass"  # issue 10 part 1: shapes first
        assert store.count_events() >= 4  # unsigned, tampered, signed, forged
