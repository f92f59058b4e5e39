"""A Locust user that sends the same distinct, validly signed callbacks as ``simulate --count``.

For load beyond one machine, Locust's own master and workers spread the users (README, "Load
beyond one machine"). Needs the ``load`` extra (``pip install 'paymobctl[load]'``). The HMAC
secret, currency and region come from the paymobctl profile exactly as for every command
(``--profile`` here is ``PAYMOB_PROFILE``; ``PAYMOB_HMAC_SECRET`` and ``.env`` work too).

    echo 'from paymobctl.locustfile import *' > locustfile.py
    locust --master --headless -u 200 -r 50 -t 5m --host https://staging.example
    locust --worker --master-host MASTER_IP

Each worker numbers its callbacks from its own block of ids (``worker_index``), so no two workers
send the same transaction: every delivery is a new callback, never a duplicate.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from locust import FastHttpUser, events, task

from paymobctl import callbacks
from paymobctl.callbacks import TransactionSpec
from paymobctl.delivery import USER_AGENT
from paymobctl.load import Signer
from paymobctl.models import Outcome, PaymentSource

__all__ = ["PaymobCallbackUser"]

IDS_PER_WORKER = 1_000_000  # a worker's block of callback numbers


def _options(parser: Any) -> None:
    parser.add_argument(
        "--paymob-webhook-path",
        default="/api/payments/webhook/",
        help="paymobctl: the processed-callback path on --host",
    )
    parser.add_argument(
        "--paymob-outcome",
        default=Outcome.APPROVED.value,
        choices=[o.value for o in Outcome],
        help="paymobctl: the outcome of every callback",
    )
    parser.add_argument(
        "--paymob-source",
        default=PaymentSource.CARD.value,
        choices=[s.value for s in PaymentSource],
        help="paymobctl: the payment source of every callback",
    )


events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]


class _Callbacks:
    """This process's signer and numbering, built once from the profile (not once per user)."""

    signer: Signer | None = None
    numbers: itertools.count[int] = itertools.count()

    @classmethod
    def get(cls, environment: Any) -> tuple[Signer, itertools.count[int]]:
        if cls.signer is None:
            from paymobctl.config import resolve

            options = environment.parsed_options
            settings = resolve()
            secret = settings.require_secret("hmac_secret", purpose="signing Locust callbacks")
            integration = settings.get("integration_id")
            template = callbacks.build_transaction(
                TransactionSpec(
                    outcome=Outcome(getattr(options, "paymob_outcome", "approved")),
                    source=PaymentSource(getattr(options, "paymob_source", "card")),
                    currency=settings.currency,
                    region=settings.region,
                    integration_id=integration if isinstance(integration, int) else 4822951,
                )
            )
            cls.signer = Signer(template, secret.reveal())
            index = getattr(environment.runner, "worker_index", None)
            block = index if isinstance(index, int) else secrets.randbelow(40)
            cls.numbers = itertools.count(block * IDS_PER_WORKER)
        return cls.signer, cls.numbers


class PaymobCallbackUser(FastHttpUser):
    """POSTs distinct signed TRANSACTION callbacks to ``--host`` + ``--paymob-webhook-path``."""

    abstract = False
    # Locust users wait between tasks by default; callbacks are a burst, so they do not.

    @task
    def transaction(self) -> None:
        """Send the next distinct, validly signed TRANSACTION callback."""
        signer, numbers = _Callbacks.get(self.environment)
        options = self.environment.parsed_options
        path = getattr(options, "paymob_webhook_path", "/api/payments/webhook/")
        body, digest = signer.wire(next(numbers))
        self.client.post(
            f"{path}?hmac={digest}",
            data=body,  # type: ignore[arg-type]  # bytes go out as they are (typed str | dict)
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            name="POST TRANSACTION callback",
        )
