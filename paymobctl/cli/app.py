"""The root ``paymobctl`` app: global options, version, and the command groups."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from paymobctl import __version__
from paymobctl.cli import end_startup
from paymobctl.cli.options import ConfigOpt, DbOpt, JsonOpt, NoColorOpt, ProfileOpt
from paymobctl.cli.runtime import GlobalOptions

_PAY = "paymobctl.cli.payments_cmd"
GROUPS: dict[str, tuple[str, str, str]] = {
    "demo": ("paymobctl.cli.demo_cmd", "app", "Run the whole product offline in a few seconds."),
    "deposit": (
        _PAY,
        "deposit_app",
        "Create a deposit, print the checkout URL; --wait until paid.",
    ),
    "pay": (_PAY, "pay_app", "Pay with a saved card (MOTO integration + card token)."),
    "status": (_PAY, "status_app", "Ask Paymob about an order or a transaction."),
    "refund": (_PAY, "refund_app", "Refund a transaction (fully or --amount)."),
    "void": (_PAY, "void_app", "Void a card transaction before settlement."),
    "capture": (_PAY, "capture_app", "Capture an authorisation."),
    "cards": (_PAY, "cards_app", "Saved cards: list, remove."),
    "deposits": (_PAY, "deposits_app", "Deposits: list, show."),
    "checklist": (
        "paymobctl.cli.checklist_cmd",
        "app",
        "The go-live checklist against a deployment; history.",
    ),
    "listen": (
        "paymobctl.cli.listen_cmd",
        "app",
        "Receive webhooks on localhost: verify, store, forward, tunnel.",
    ),
    "events": ("paymobctl.cli.events_cmd", "app", "Received webhooks: list, show, replay, export."),
    "simulate": (
        "paymobctl.cli.simulate_cmd",
        "app",
        "Send signed callbacks that look exactly like Paymob's.",
    ),
    "webhook": (
        "paymobctl.cli.webhook_cmd",
        "app",
        "Test your webhook endpoint: the conformance suite; history.",
    ),
    "sandbox": (
        "paymobctl.cli.sandbox_cmd",
        "app",
        "Run a local emulator of Paymob's API and hosted checkout.",
    ),
    "hmac": ("paymobctl.cli.hmac_cmd", "app", "Compute, verify and explain Paymob callback HMACs."),
    "config": (
        "paymobctl.cli.config_cmd",
        "app",
        "Profiles and settings: init, import-env, show, profiles, set, use.",
    ),
}
# Command groups are imported only when used: `paymobctl --help` and every single command load
# just what they need (scripts/bench_startup.py keeps this honest). name: (module, attribute, help).


class LazyGroup(TyperGroup):
    """The root group: lists every command group but imports one only when it is invoked."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*GROUPS, *(name for name in self.commands if name not in GROUPS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in GROUPS:
            module_name, attribute, _ = GROUPS[cmd_name]
            command = typer.main.get_command(
                getattr(importlib.import_module(module_name), attribute)
            )
            command.name = cmd_name
            self.commands[cmd_name] = command
            end_startup()
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, help_text) for name, (_, _, help_text) in GROUPS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


HELP = """\
paymobctl: the command-line tool and local webhook sandbox for Paymob integrations.

Compute and explain callback HMACs, fire signed callbacks at your endpoint, run a local
Paymob emulator, receive webhooks on localhost, create deposits and run the go-live checklist.
With nothing configured every command uses the built-in 'sandbox' profile.

Exit codes: 0 ok, 1 check or verification failed, 2 usage or configuration error,
3 Paymob API or network error, 4 wait timed out, 70 internal error (a paymobctl bug),
130 interrupted. With --json an error is also one JSON object on stdout:
{"error": {"message", "hint", "exit_code"}}.
"""

app = typer.Typer(
    name="paymobctl",
    cls=LazyGroup,
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"paymobctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
) -> None:
    """Options given here apply to every command (they may also follow the command name)."""
    del version
    ctx.obj = GlobalOptions(profile=profile, config=config, db=db, json=json, no_color=no_color)
