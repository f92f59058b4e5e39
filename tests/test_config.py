"""Profiles, precedence, masking, file permissions and bad-config errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from paymobctl import config, samples
from paymobctl.errors import ConfigError
from paymobctl.models import Mode, Region, Secret
from paymobctl.sandbox_profile import SANDBOX

from .conftest import run_cli, write_config
from .test_signing import DOCS_HMAC, DOCS_SECRET

CANARY = "CANARY-SECRET-7f1e2d3c4b5a69788"


def test_builtin_sandbox_is_the_default_when_nothing_is_configured() -> None:
    settings = config.resolve()
    assert settings.profile == "sandbox" and not settings.explicit_profile
    assert settings.base_url == SANDBOX.base_url
    assert settings.get("integration_id") == SANDBOX.integration_id
    assert settings.secret("hmac_secret") == Secret(SANDBOX.hmac_secret)
    assert settings.values["api_key"].source is config.Source.BUILTIN


def test_precedence_flag_env_dotenv_profile_builtin(
    config_file: Path, hermetic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        config_file,
        'default_profile = "shop"\n[profiles.shop]\niframe_id = 111\nintegration_id = 222\n'
        'hmac_secret = "from-profile-secret"\napi_key = "from-profile-apikey"\nregion = "ksa"\n',
    )
    (hermetic / ".env").write_text(
        "# Django .env\nDJANGO_PRODUCTION=False\nPAYMOB_INTEGRATION_ID=333\n"
        "PAYMOB_HMAC_SECRET='from-dotenv-secret'\nPAYMOB_API_KEY=from-dotenv-apikey # comment\n"
    )
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", "from-env-secret-value")
    monkeypatch.setenv("PAYMOB_API_KEY", "from-env-apikey-value")
    settings = config.resolve(
        overrides={"api_key": config.flag(Secret("from-flag-apikey"), "--api-key")}
    )
    assert settings.profile == "shop"
    assert settings.get("api_key").reveal() == "from-flag-apikey"  # flag
    assert settings.values["api_key"].source is config.Source.FLAG
    assert settings.get("hmac_secret").reveal() == "from-env-secret-value"  # env beats .env
    assert settings.values["hmac_secret"].origin == "PAYMOB_HMAC_SECRET"
    assert settings.get("integration_id") == 333  # .env beats profile
    assert settings.values["integration_id"].origin.endswith(".env:3")
    assert settings.get("iframe_id") == 111  # profile
    assert settings.values["iframe_id"].source is config.Source.PROFILE
    assert settings.get("mode") is Mode.TEST  # built-in default
    assert settings.values["mode"].source is config.Source.BUILTIN
    assert settings.region is Region.KSA and settings.base_url == "https://ksa.paymob.com"
    assert settings.currency == "SAR"


def test_profile_selection_precedence(
    config_file: Path, hermetic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        config_file,
        'default_profile = "a"\n[profiles.a]\niframe_id = 1\n[profiles.b]\niframe_id = 2\n'
        "[profiles.c]\niframe_id = 3\n[profiles.d]\niframe_id = 4\n",
    )
    assert config.resolve().profile == "a"
    (hermetic / ".env").write_text("PAYMOB_PROFILE=b\n")
    assert config.resolve().profile == "b"
    monkeypatch.setenv("PAYMOB_PROFILE", "c")
    assert config.resolve().profile == "c"
    assert config.resolve(profile_flag="d").get("iframe_id") == 4


def test_config_flag_and_env_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = write_config(tmp_path / "one.toml", "[profiles.x]\niframe_id = 1\n")
    two = write_config(tmp_path / "two.toml", "[profiles.x]\niframe_id = 2\n")
    monkeypatch.setenv("PAYMOBCTL_CONFIG", str(one))
    assert config.resolve(profile_flag="x").get("iframe_id") == 1
    assert config.resolve(profile_flag="x", config_flag=str(two)).get("iframe_id") == 2


def test_live_profile_only_when_explicit(config_file: Path) -> None:
    write_config(
        config_file, 'default_profile = "prod"\n[profiles.prod]\nmode = "live"\napi_key = "k"\n'
    )
    with pytest.raises(ConfigError, match="only used when selected explicitly"):
        config.resolve()
    assert config.resolve(profile_flag="prod").is_live
    result = run_cli("config", "show")
    assert result.code == 2 and "--profile prod" in result.stderr
    shown = run_cli("--profile", "prod", "config", "show")
    assert shown.code == 0 and "LIVE mode" in shown.stderr


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[profiles.x\n", "invalid TOML"),
        (
            "[profiles.x]\napi_kye = 'a'\n",
            "profiles.x.api_kye: unknown key — did you mean 'api_key'?",
        ),
        (
            "[profiles.x]\nintegration_id = 'abc'\n",
            "profiles.x.integration_id: expected a whole number",
        ),
        ("[profiles.x]\nregion = 'mars'\n", "profiles.x.region: unknown region 'mars'"),
        ("[profiles.x]\nmode = 'prod'\n", "profiles.x.mode: unknown mode"),
        ("[profiles.x]\nbase_url = 'ftp://x'\n", "profiles.x.base_url: invalid URL"),
        ("[profiles.x]\ncurrency = 'pounds'\n", "profiles.x.currency: invalid currency"),
        ("profile = 'x'\n", "profile: unknown top-level key"),
        ("profiles = 3\n", "profiles: must be a table"),
    ],
)
def test_bad_config_is_one_line_exit_2_naming_file_and_key(
    config_file: Path, text: str, needle: str
) -> None:
    write_config(config_file, text)
    result = run_cli("--profile", "x", "config", "show")
    assert result.code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(config_file) in lines[0] and needle in lines[0]
    assert "Traceback" not in result.stderr


def test_unknown_profile_and_bad_env_value(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli("--profile", "nope", "config", "show")
    assert (
        result.code == 2
        and "unknown profile 'nope'" in result.stderr
        and "config init" in result.stderr
    )
    monkeypatch.setenv("PAYMOB_INTEGRATION_ID", "twelve")
    result = run_cli("config", "show")
    assert (
        result.code == 2
        and "PAYMOB_INTEGRATION_ID" in result.stderr
        and "whole number" in result.stderr
    )


def test_missing_value_a_command_needs(config_file: Path) -> None:
    write_config(config_file, 'default_profile = "bare"\n[profiles.bare]\niframe_id = 1\n')
    result = run_cli("hmac", "sign", "--url", "https://x.example/r?id=1")
    assert result.code == 2
    assert "hmac_secret is not set for profile 'bare'" in result.stderr
    assert str(config_file) in result.stderr and "PAYMOB_HMAC_SECRET" in result.stderr


def test_malformed_dotenv_line_of_ours(hermetic: Path) -> None:
    (hermetic / ".env").write_text("OTHER stuff that is not ours\nPAYMOB_API_KEY\n")
    result = run_cli("config", "show")
    assert result.code == 2 and ".env: line 2 is not KEY=VALUE" in result.stderr


def test_init_writes_0600_and_masks(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", CANARY)
    monkeypatch.setenv("PAYMOB_API_KEY", CANARY + "-api")
    result = run_cli(
        "--profile",
        "shop",
        "config",
        "init",
        "--from-env",
        "--region",
        "uae",
        "--integration-id",
        "123",
        "--iframe-id",
        "456",
        "--no-input",
        "--no-verify",  # the uae host is not reachable from tests; verification is tested below
    )
    assert result.code == 0, result.stderr
    mode = stat.S_IMODE(config_file.stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(config_file.parent.stat().st_mode) & 0o077 == 0
    assert CANARY in config_file.read_text()  # stored for real, only in the 0600 file
    monkeypatch.delenv("PAYMOB_HMAC_SECRET")
    monkeypatch.delenv("PAYMOB_API_KEY")
    shown = run_cli("config", "show")
    assert "shop (from" in shown.stdout and "****" in shown.stdout
    assert CANARY not in shown.output
    again = run_cli("--profile", "shop", "config", "init", "--no-input")
    assert again.code == 2 and "already exists" in again.stderr
    settings = config.resolve()
    assert settings.region is Region.UAE and settings.get("integration_id") == 123


def new_profile(name: str, *args: str) -> Any:
    """`config init` of a complete, unverified profile."""
    return run_cli(
        "--profile", name, "config", "init", "--no-input", "--no-verify", "--from-env",
        "--integration-id", "1", *args,
    )  # fmt: skip


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_API_KEY", "k-api")
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", "s-hmac")


def test_set_unset_use_and_profiles(
    config_file: Path, credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert new_profile("a").code == 0
    assert new_profile("b", "--mode", "live").code == 0
    monkeypatch.delenv("PAYMOB_API_KEY")
    monkeypatch.delenv("PAYMOB_HMAC_SECRET")
    assert run_cli("config", "set", "iframe_id", "77").code == 0  # default profile a
    assert config.resolve().get("iframe_id") == 77
    result = run_cli("config", "set", "iframe_id", "x7")
    assert result.code == 2 and "whole number" in result.stderr
    assert run_cli("config", "set", "hmac_secret", "-", stdin=CANARY + "\n").code == 0
    assert config.resolve().get("hmac_secret").reveal() == CANARY
    assert run_cli("config", "unset", "iframe_id").code == 0
    assert config.resolve().get("iframe_id") is None
    listing = run_cli("config", "profiles", "--json").json()
    assert [p["name"] for p in listing] == ["sandbox", "a", "b"]
    assert [p["mode"] for p in listing] == ["test", "test", "live"]
    refused = run_cli("config", "use", "b")
    assert refused.code == 2 and "cannot be the default profile: it is a live profile" in (
        refused.stderr
    )
    assert run_cli("config", "use", "b", "--force").code == 0
    assert run_cli("config", "show").code == 2  # b is live: explicit only
    assert run_cli("config", "use", "zzz").code == 2
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600


def test_import_env(hermetic: Path, config_file: Path) -> None:
    env = hermetic / "django.env"
    env.write_text(
        "# Security: NEVER commit this file to Git\nPAYMOB_API_KEY=your_test_key_0001\n"
        "PAYMOB_INTEGRATION_ID=12345\nPAYMOB_IFRAME_ID=67890\nPAYMOB_HMAC_SECRET=" + CANARY + "\n"
        "PAYMOB_SECRET_KEY=egy_sk_live_abcdef0123456789\nDJANGO_PRODUCTION=False\n"
    )
    result = run_cli("--profile", "prod", "config", "import-env", str(env))
    assert result.code == 0, result.stderr
    assert CANARY not in result.output
    assert "live profile" in result.stderr  # inferred from egy_sk_live_
    settings = config.resolve(profile_flag="prod")
    assert settings.get("integration_id") == 12345 and settings.get("iframe_id") == 67890
    assert settings.is_live
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    missing = run_cli("config", "import-env", str(hermetic / "nope.env"))
    assert missing.code == 2 and "no such file" in missing.stderr
    (hermetic / "empty.env").write_text("DEBUG=1\n")
    empty = run_cli("config", "import-env", str(hermetic / "empty.env"))
    assert empty.code == 2 and "no PAYMOB_*" in empty.stderr


def test_secret_repr_and_masking() -> None:
    secret = Secret(CANARY)
    assert CANARY not in repr(secret) and CANARY not in str(secret) and CANARY not in f"{secret}"
    assert secret.masked == "****9788"
    assert Secret("short").masked == "****"


def test_loose_permissions_warning(config_file: Path) -> None:
    write_config(config_file, "[profiles.x]\niframe_id = 1\n")
    config_file.chmod(0o644)
    result = run_cli("--profile", "x", "config", "show")
    assert result.code == 0 and "chmod 600" in result.stderr


def test_wrongly_typed_secrets_are_never_echoed(config_file: Path) -> None:
    write_config(
        config_file,
        '[profiles.x]\nhmac_secret = 98765432123\napi_key = ["TOPSECRETKEY"]\n',
    )
    result = run_cli("--profile", "x", "config", "show")
    assert (
        result.code == 2 and "hmac_secret" in result.stderr and "expected a string" in result.stderr
    )
    assert "98765432123" not in result.output and "TOPSECRETKEY" not in result.output


def test_secret_file_from_stdin_and_bad_secret_files(hermetic: Path) -> None:
    body = hermetic / "cb.json"
    body.write_text(json.dumps(samples.load("docs-transaction").body))
    args = ("hmac", "verify", str(body), "--hmac", DOCS_HMAC, "--secret-file")
    assert run_cli(*args, "-", stdin=DOCS_SECRET + "\n").code == 0
    not_text = hermetic / "binary.secret"
    not_text.write_bytes(b"\xff\xfe\x00secret")
    bad = run_cli(*args, str(not_text))
    assert bad.code == 2 and "not UTF-8 text" in bad.stderr and "Traceback" not in bad.output
    empty = hermetic / "empty.secret"
    empty.write_text("\n")
    assert run_cli(*args, str(empty)).code == 2
    missing = run_cli(*args, str(hermetic / "nope.secret"))
    assert missing.code == 2 and "nope.secret" in missing.stderr


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("eg", Region.EG),
        ("EG", Region.EG),
        ("ksa", Region.KSA),
        ("SA", Region.KSA),
        ("KSA", Region.KSA),
        ("uae", Region.UAE),
        ("AE", Region.UAE),
        ("UAE", Region.UAE),
        ("OM", Region.OMAN),
        ("oman", Region.OMAN),
        ("PK", Region.PAKISTAN),
        (" pakistan ", Region.PAKISTAN),
    ],
)
def test_region_names_and_country_codes(text: str, region: Region) -> None:
    """Acceptance review: OM and PK (and the other country codes) were refused."""
    settings = config.resolve(environ={"PAYMOB_REGION": text})
    assert settings.region is region and Region.parse(text) is region


def test_unknown_region_names_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        config.resolve(environ={"PAYMOB_REGION": "mars"})
    assert "mars" in str(caught.value)
    assert "OM" in caught.value.hint and "pakistan" in caught.value.hint  # type: ignore[operator]


def test_region_gives_its_currency_unless_one_is_set(config_file: Path) -> None:
    """Acceptance review: PAYMOB_REGION=ksa with the built-in sandbox profile still gave EGP."""
    assert config.resolve(environ={}).currency == "EGP"
    assert config.resolve(environ={"PAYMOB_REGION": "ksa"}).currency == "SAR"
    assert config.resolve(environ={"PAYMOB_REGION": "OM"}).currency == "OMR"
    explicit = {"PAYMOB_REGION": "ksa", "PAYMOB_CURRENCY": "egp"}
    assert config.resolve(environ=explicit).currency == "EGP"
    write_config(config_file, '[profiles.sandbox]\nregion = "ksa"\ncurrency = "USD"\n')
    assert config.resolve(environ={}).currency == "USD"
    write_config(config_file, '[profiles.sandbox]\nregion = "uae"\n')
    assert config.resolve(environ={}).currency == "AED"


def test_a_missing_config_file_named_explicitly_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.toml"
    result = run_cli("--config", str(missing), "config", "show")
    assert result.code == 2 and "no such config file (given with --config)" in result.stderr
    monkeypatch.setenv("PAYMOBCTL_CONFIG", str(missing))
    via_env = run_cli("deposits", "list")
    assert via_env.code == 0  # commands that need no settings do not care
    shown = run_cli("config", "show")
    assert shown.code == 2 and "given with PAYMOBCTL_CONFIG" in shown.stderr
    monkeypatch.setenv("PAYMOB_API_KEY", "k")
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", "s")
    created = new_profile("shop")
    assert created.code == 0, created.output
    assert missing.exists() and run_cli("config", "show").code == 0


def test_init_needs_the_required_values_and_verifies(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paymobctl.emulator import create_app as create_sandbox

    from .inprocess import in_process

    bare = run_cli("--profile", "x", "config", "init", "--no-input")
    assert bare.code == 2
    for name in ("PAYMOB_API_KEY", "PAYMOB_INTEGRATION_ID", "PAYMOB_HMAC_SECRET"):
        assert name in bare.stderr
    assert not config_file.exists()
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", "s")
    with in_process(create_sandbox()) as base:
        monkeypatch.setenv("PAYMOB_API_KEY", SANDBOX.api_key)
        good = run_cli(
            "--profile", "shop", "config", "init", "--no-input", "--from-env", "--base-url",
            base, "--integration-id", str(SANDBOX.integration_id),
        )  # fmt: skip
        assert good.code == 0, good.output
        assert "✓ authenticated" in good.stdout and "paymobctl sandbox (merchant" in good.stdout
        assert (
            f"integration {SANDBOX.integration_id}:" in good.stdout and "EGP, test" in good.stdout
        )
        wrong = run_cli(
            "--profile", "other", "config", "init", "--no-input", "--from-env", "--base-url",
            base, "--integration-id", "999",
        )  # fmt: skip
        assert wrong.code == 2 and "integration 999 is not among" in wrong.stderr
        monkeypatch.setenv("PAYMOB_API_KEY", "wrong-key")
        rejected = run_cli(
            "--profile", "bad", "config", "init", "--no-input", "--from-env", "--base-url",
            base, "--integration-id", "1",
        )  # fmt: skip
        assert rejected.code == 3 and "API key was rejected" in rejected.stderr
        assert "nothing was saved" in rejected.stderr
    names = [p["name"] for p in run_cli("config", "profiles", "--json").json()]
    assert "shop" in names and "other" not in names and "bad" not in names


def test_config_use_refuses_an_unusable_profile(config_file: Path) -> None:
    write_config(config_file, "[profiles.bare]\niframe_id = 1\n")
    refused = run_cli("config", "use", "bare")
    assert refused.code == 2 and "it has no api_key and no integration_id" in refused.stderr
    assert run_cli("config", "use", "nope").code == 2
    assert run_cli("config", "use", "bare", "--force").code == 0


def test_interactive_init_asks_a_bad_answer_again(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer

    from paymobctl.cli import config_cmd

    answers = {"api_key": ["k-api"], "hmac_secret": ["s-hmac"], "integration_id": ["abc", "7"]}
    asked: list[str] = []

    def prompt(text: str, **kwargs: Any) -> str:
        key = text.split(" ", 1)[0]
        asked.append(key)
        queue = answers.get(key, [])
        return queue.pop(0) if queue else ""

    monkeypatch.setattr(config_cmd, "_on_terminal", lambda: True)
    monkeypatch.setattr(typer, "prompt", prompt)
    result = run_cli("--profile", "tty", "config", "init", "--no-verify")
    assert result.code == 0, result.output
    assert asked.count("integration_id") == 2  # "abc" was refused and asked again
    assert "integration_id: " in result.stderr and "whole number" in result.stderr
    assert "base_url" in asked and "region" in asked
    assert "integration_id = 7" in config_file.read_text()


def test_settings_get_is_typed_by_each_keys_kind() -> None:
    """Settings.get's overloads (SecretKey, IntKey, TextKey, region, mode, ngrok_install) cover
    every key with the type its kind parses to, so callers need no casts."""
    from typing import get_args

    from paymobctl import config
    from paymobctl.config import KEYS, IntKey, SecretKey, TextKey, ValueKind
    from paymobctl.models import Mode, Secret

    groups = {
        ValueKind.SECRET: set(get_args(SecretKey)),
        ValueKind.INT: set(get_args(IntKey)),
        ValueKind.TEXT: set(get_args(TextKey)),
        ValueKind.URL: set(get_args(TextKey)),
        ValueKind.CURRENCY: set(get_args(TextKey)),
    }
    typed = set().union(*groups.values()) | {"region", "mode", "ngrok_install"}
    assert typed == set(KEYS)
    for name, spec in KEYS.items():
        if spec.kind in groups:
            assert name in groups[spec.kind], name
    settings = config.resolve(environ={"PAYMOB_INTEGRATION_ID": "42"})
    assert settings.get("integration_id") == 42 and settings.get("mode") is Mode.TEST
    assert isinstance(settings.get("hmac_secret"), Secret)
