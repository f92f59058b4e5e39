"""``paymobctl config``: create profiles, import a Django .env, show effective values and sources."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from paymobctl.cli.options import command, runtime
from paymobctl.errors import ConfigError, UsageError

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    help="Profiles and settings: init, import-env, show, profiles, set, unset, use, path, doctor.",
    no_args_is_help=True,
)

DEFAULT_NEW_PROFILE = "default"


def _config_path() -> Path:
    from paymobctl.paths import config_path

    return config_path(runtime().options.config)


def _target_profile(fallback: str | None = None) -> str:
    """The profile a write applies to: --profile, PAYMOB_PROFILE, the default profile, or fallback."""
    import os

    from paymobctl.config import PROFILE_ENV, check_profile_name, load_config_file

    options = runtime().options
    name = options.profile or os.environ.get(PROFILE_ENV)
    if not name:
        name = load_config_file(_config_path()).default_profile or fallback
    if not name:
        raise UsageError("no profile selected", hint="pass --profile NAME")
    return check_profile_name(name)


def _on_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _parse(key: str, text: str) -> Any:
    from paymobctl.config import KEYS, fix_hint, parse_value

    spec = KEYS.get(key)
    if spec is None:
        import difflib

        close = difflib.get_close_matches(key, list(KEYS), n=1)
        raise UsageError(
            f"unknown key {key!r}",
            hint=(f"did you mean {close[0]!r}?" if close else "keys: " + ", ".join(KEYS)),
        )
    try:
        return parse_value(spec, text, from_text=True)
    except ValueError as exc:
        raise UsageError(f"{key}: {exc}", hint=fix_hint(spec)) from None


@command(app, "init")
def init(
    region: Annotated[
        str | None, typer.Option(help="eg, ksa, uae, oman or pakistan.", show_default=False)
    ] = None,
    mode: Annotated[str | None, typer.Option(help="test or live.", show_default=False)] = None,
    currency: Annotated[
        str | None, typer.Option(help="Integration currency.", show_default=False)
    ] = None,
    integration_id: Annotated[
        str | None, typer.Option(help="Card integration id.", show_default=False)
    ] = None,
    moto_integration_id: Annotated[
        str | None, typer.Option(help="MOTO integration id (saved cards).", show_default=False)
    ] = None,
    iframe_id: Annotated[str | None, typer.Option(help="Iframe id.", show_default=False)] = None,
    public_key: Annotated[
        str | None, typer.Option(help="Public key (not secret).", show_default=False)
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="API host, overriding region.", show_default=False)
    ] = None,
    processed_callback_url: Annotated[
        str | None, typer.Option(help="Transaction processed callback URL.", show_default=False)
    ] = None,
    response_callback_url: Annotated[
        str | None, typer.Option(help="Transaction response callback URL.", show_default=False)
    ] = None,
    from_env: Annotated[
        bool,
        typer.Option(
            "--from-env",
            help="Take secrets (and any other value not given) from PAYMOB_* in the environment "
            "or ./.env — the non-interactive way to store secrets.",
        ),
    ] = False,
    no_input: Annotated[
        bool, typer.Option("--no-input", help="Never prompt, even on a terminal.")
    ] = False,
    default: Annotated[
        bool | None,
        typer.Option(
            "--default/--no-default", help="Make it the default profile.", show_default=False
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing profile.")] = False,
    no_verify: Annotated[
        bool,
        typer.Option(
            "--no-verify", help="Save without authenticating once against the profile's API."
        ),
    ] = False,
) -> None:
    """Create a profile in the config file (mode 0600). Prompts on a terminal; flags otherwise.
    Needs PAYMOB_API_KEY, PAYMOB_INTEGRATION_ID and PAYMOB_HMAC_SECRET (prompted, or --from-env);
    authenticates once and reports the merchant and integration found, unless --no-verify."""
    import os

    from paymobctl.config import (
        KEYS,
        ValueKind,
        check_profile_name,
        infer_mode,
        load_config_file,
        missing_required,
        read_dotenv,
        save_profile,
    )
    from paymobctl.models import Mode

    rt = runtime()
    path = _config_path()
    current = load_config_file(path)
    interactive = not no_input and not rt.json and _on_terminal()
    name = rt.options.profile or os.environ.get("PAYMOB_PROFILE")
    if not name and interactive:
        name = typer.prompt("Profile name", default=DEFAULT_NEW_PROFILE)
    name = check_profile_name(name or DEFAULT_NEW_PROFILE)
    if name in current.profiles and not force:
        raise ConfigError(
            f"profile {name!r} already exists",
            path=str(path),
            hint="pass --force to replace it, or change one value with `paymobctl config set`",
        )
    given = {
        "region": region,
        "mode": mode,
        "currency": currency,
        "integration_id": integration_id,
        "moto_integration_id": moto_integration_id,
        "iframe_id": iframe_id,
        "public_key": public_key,
        "base_url": base_url,
        "processed_callback_url": processed_callback_url,
        "response_callback_url": response_callback_url,
    }
    values: dict[str, Any] = {k: _parse(k, v) for k, v in given.items() if v is not None}
    if from_env:
        dotenv = read_dotenv(Path.cwd() / ".env")
        for key, spec in KEYS.items():
            if key in values:
                continue
            for env_name in spec.env:
                text = os.environ.get(env_name) or (
                    dotenv[env_name].value if env_name in dotenv else None
                )
                if text:
                    values[key] = _parse(key, text)
                    break
    if interactive:
        for key, spec in KEYS.items():
            if key in values or (key == "base_url" and "region" in values):
                continue
            while True:  # a bad answer is asked again, not the end of the whole init
                answer = typer.prompt(
                    f"{key} ({spec.help}; empty to skip)",
                    default="",
                    hide_input=spec.kind is ValueKind.SECRET,
                    show_default=False,
                )
                if not answer.strip():
                    break
                try:
                    values[key] = _parse(key, answer)
                    break
                except UsageError as exc:
                    rt.out.error(str(exc))
    missing = missing_required(values)
    if missing:
        raise ConfigError(
            f"profile {name!r} needs {', '.join(missing)}",
            path=str(path),
            hint="set them in the environment or ./.env and pass --from-env, or run "
            "`paymobctl config init` on a terminal to be asked",
        )
    if "mode" not in values:
        values["mode"] = infer_mode(values) or Mode.TEST
    if not no_verify:
        _verify(values)
    make_default = (
        default
        if default is not None
        else (current.default_profile is None and values["mode"] is Mode.TEST)
    )
    save_profile(path, name, values, make_default=make_default, replace=True)
    summary = {
        "profile": name,
        "config": str(path),
        "keys": sorted(values),
        "default": make_default,
        "mode": values["mode"].value,
    }
    if rt.json:
        rt.out.json(summary)
        return
    rt.out.ok(f"wrote profile {name!r} to {path} (mode 0600)")
    rt.out.line(f"keys set: {', '.join(sorted(values))}")
    if values["mode"] is Mode.LIVE:
        rt.out.warn(f"{name!r} is a live profile: it is only used with --profile {name}")
    if make_default:
        rt.out.line(f"{name!r} is now the default profile")


def _verify(values: dict[str, Any]) -> None:
    """Authenticate once with the values about to be written and say what was found."""
    from paymobctl import outbound
    from paymobctl.client import PaymobClient
    from paymobctl.errors import PaymobctlError
    from paymobctl.models import Region

    region = values.get("region") or Region.EG
    base = values.get("base_url") or region.base_url
    out = runtime().out
    integration = values.get("integration_id")
    with outbound.client() as http:
        client = PaymobClient(http, base_url=base, api_key=values.get("api_key"))
        client.progress = out.waiting
        try:
            account = client.account(integration)
        except PaymobctlError as exc:
            exc.hint = (
                f"{exc.hint + '; ' if exc.hint else ''}nothing was saved (--no-verify saves anyway)"
            )
            raise
    out.ok(f"✓ authenticated at {base}: {account.merchant}")
    if account.problem:
        out.warn(f"integration {integration} not checked: {account.problem}")
    elif account.integration is None:
        raise ConfigError(
            f"integration {integration} is not among the {account.integrations} integrations of "
            f"{account.merchant}",
            hint="copy the id from Developers → Payment Integrations (of this mode); nothing was "
            "saved (--no-verify saves anyway)",
        )
    else:
        found = account.integration
        live = "live" if found.get("is_live") else "test"
        out.line(
            f"  integration {integration}: {found.get('name') or found.get('gateway_type') or '?'} "
            f"({found.get('currency') or '?'}, {live})"
        )


@command(app, "import-env")
def import_env(
    path: Annotated[Path, typer.Argument(help="The Django project's .env file.")] = Path(".env"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing profile.")] = False,
    default: Annotated[
        bool | None,
        typer.Option(
            "--default/--no-default", help="Make it the default profile.", show_default=False
        ),
    ] = None,
) -> None:
    """Turn an existing Django .env (PAYMOB_API_KEY, PAYMOB_HMAC_SECRET, ...) into a profile."""
    from paymobctl.config import (
        check_profile_name,
        import_env_values,
        infer_mode,
        load_config_file,
        save_profile,
    )
    from paymobctl.models import Mode

    rt = runtime()
    config = _config_path()
    current = load_config_file(config)
    name = check_profile_name(rt.options.profile or DEFAULT_NEW_PROFILE)
    if name in current.profiles and not force:
        raise ConfigError(
            f"profile {name!r} already exists",
            path=str(config),
            hint="pass --force to replace it, or --profile NAME to import into a new profile",
        )
    values = import_env_values(path)
    if "mode" not in values:
        values["mode"] = infer_mode(values) or Mode.TEST
    make_default = (
        default
        if default is not None
        else (current.default_profile is None and values["mode"] is Mode.TEST)
    )
    save_profile(config, name, values, make_default=make_default, replace=True)
    if rt.json:
        rt.out.json(
            {
                "profile": name,
                "config": str(config),
                "source": str(path),
                "keys": sorted(values),
                "mode": values["mode"].value,
                "default": make_default,
            }
        )
        return
    rt.out.ok(
        f"imported {len(values)} values from {path} into profile {name!r} ({config}, mode 0600)"
    )
    rt.out.line("keys: " + ", ".join(sorted(values)))
    if values["mode"] is Mode.LIVE:
        rt.out.warn(f"{name!r} is a live profile: it is only used with --profile {name}")


@command(app, "show")
def show() -> None:
    """Print every effective value with where it came from; secrets masked."""
    from paymobctl.config import KEYS

    rt = runtime()
    settings = rt.settings()
    rows = []
    for key in KEYS:
        resolved = settings.values.get(key)
        rows.append(
            (
                key,
                resolved.display() if resolved else "",
                resolved.source.value if resolved else "unset",
                resolved.origin if resolved else "",
            )
        )
    if rt.json:
        rt.out.json(
            {
                "profile": settings.profile,
                "profile_origin": settings.profile_origin,
                "config": str(settings.config.path),
                "config_exists": settings.config.exists,
                "db": str(rt.db_path),
                "mode": settings.mode.value,
                "base_url": settings.base_url,
                "values": {
                    key: {"value": value or None, "source": source, "origin": origin or None}
                    for key, value, source, origin in rows
                },
            }
        )
        return
    rt.out.pairs(
        [
            ("profile", f"{settings.profile} (from {settings.profile_origin})"),
            ("mode", settings.mode.value.upper() if settings.is_live else settings.mode.value),
            ("base url", settings.base_url),
            (
                "config",
                f"{settings.config.path}"
                + ("" if settings.config.exists else " (not created yet)"),
            ),
            ("store", str(rt.db_path)),
        ]
    )
    rt.out.table(["key", "value", "source", "origin"], rows)
    if settings.config.loose_permissions:
        rt.out.warn(f"{settings.config.path} is readable by other users: run chmod 600 on it")
    rt.announce_mode(settings)


@command(app, "profiles")
def profiles() -> None:
    """List the built-in sandbox profile and the profiles in the config file."""
    from paymobctl.config import builtin_values, load_config_file
    from paymobctl.sandbox_profile import SANDBOX_PROFILE

    rt = runtime()
    config = load_config_file(_config_path())
    default = config.default_profile or SANDBOX_PROFILE
    entries = []
    names = [SANDBOX_PROFILE] + [n for n in config.profiles if n != SANDBOX_PROFILE]
    for name in names:
        values = {**builtin_values(name), **config.profiles.get(name, {})}
        host = values.get("base_url") or values["region"].base_url
        entries.append(
            {
                "name": name,
                "default": name == default,
                "mode": values["mode"].value,
                "host": host,
                "source": "built-in"
                if name == SANDBOX_PROFILE and name not in config.profiles
                else str(config.path),
                "keys": len(values),
            }
        )
    if rt.json:
        rt.out.json(entries)
        return
    rt.out.table(
        ["", "profile", "mode", "host", "defined in"],
        [
            ("*" if e["default"] else "", e["name"], e["mode"], e["host"], e["source"])
            for e in entries
        ],
    )


@command(app, "set")
def set_value(
    key: Annotated[str, typer.Argument(help="Key, e.g. hmac_secret or integration_id.")],
    value: Annotated[str, typer.Argument(help="The value; '-' reads it from stdin (for secrets).")],
) -> None:
    """Set one value in a profile (--profile, else the default profile)."""
    from paymobctl.config import save_profile

    rt = runtime()
    name = _target_profile()
    text = sys.stdin.readline().rstrip("\r\n") if value == "-" else value
    parsed = _parse(key, text)
    save_profile(_config_path(), name, {key: parsed})
    if rt.json:
        rt.out.json({"profile": name, "key": key, "value": parsed})
        return
    from paymobctl.cli.output import to_jsonable

    rt.out.ok(f"{name}.{key} = {to_jsonable(parsed)}")


@command(app, "unset")
def unset_value(key: Annotated[str, typer.Argument(help="Key to remove.")]) -> None:
    """Remove one value from a profile (--profile, else the default profile)."""
    from paymobctl.config import KEYS, save_profile

    rt = runtime()
    if key not in KEYS:
        _parse(key, "")
    name = _target_profile()
    save_profile(_config_path(), name, {key: None})
    if rt.json:
        rt.out.json({"profile": name, "key": key, "removed": True})
        return
    rt.out.ok(f"removed {name}.{key}")


@command(app, "use")
def use(
    name: Annotated[str, typer.Argument(help="Profile to make the default.")],
    force: Annotated[
        bool, typer.Option("--force", help="Make it the default even if it cannot be used.")
    ] = False,
) -> None:
    """Make NAME the default profile. A profile that cannot be used as the default (live, or
    without api_key/integration_id) is refused unless --force."""
    from paymobctl.config import load_config_file, set_default_profile, unusable_reason

    rt = runtime()
    reason = unusable_reason(load_config_file(_config_path()), name)
    if reason and not force:
        raise ConfigError(
            f"profile {name!r} cannot be the default profile: {reason}",
            path=str(_config_path()),
            hint="fix it with `paymobctl config set`, pass --profile NAME when you need it, or "
            "--force",
        )
    set_default_profile(_config_path(), name)
    if rt.json:
        rt.out.json({"default_profile": name})
        return
    rt.out.ok(f"default profile: {name}")


@command(app, "path")
def path_cmd() -> None:
    """Print where the config file and the store live."""
    rt = runtime()
    data = {"config": str(_config_path()), "db": str(rt.db_path)}
    if rt.json:
        rt.out.json(data)
        return
    rt.out.pairs(list(data.items()))


@command(app, "doctor")
def doctor() -> None:
    """Check what `listen --tunnel ngrok` and the callback URLs need: the ngrok agent and
    authtoken, the running listener, and callback URLs still pointing at an old tunnel.
    Exit 1 when something needs fixing."""
    from paymobctl.runfile import read_listener, stale_callback_urls
    from paymobctl.tunnel import Finding, readiness

    rt = runtime()
    settings = rt.settings()
    token = settings.values.get("ngrok_authtoken")
    findings = readiness(
        f"{token.display()} from {token.origin}" if token else None,
        install=settings.get("ngrok_install") is not False,
    )
    listener = read_listener()
    if listener is None:
        findings.append(Finding(True, "listener: none running"))
    else:
        tunnel = f", tunnel {listener.tunnel_state}" + (
            f" at {listener.public_url}" if listener.public_url else ""
        )
        findings.append(
            Finding(
                listener.tunnel_state in ("up", "none"),
                f"listener: pid {listener.pid} at {listener.local_url}{tunnel if listener.tunnel else ''}",
            )
        )
    findings += [Finding(False, text) for text in stale_callback_urls(settings, listener)]
    if rt.json:
        rt.out.json([{"ok": f.ok, "text": f.text} for f in findings])
    else:
        for finding in findings:
            (rt.out.line if finding.ok else rt.out.warn)(finding.text)
    if not all(f.ok for f in findings):
        raise typer.Exit(1)
