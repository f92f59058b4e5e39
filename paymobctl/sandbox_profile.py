"""The built-in ``sandbox`` profile: fixed, documented demo credentials shared by the emulator and
the configuration, so every command works against ``paymobctl sandbox`` with no setup."""

from __future__ import annotations

from dataclasses import dataclass

SANDBOX_PROFILE = "sandbox"
SANDBOX_HOST = "127.0.0.1"
SANDBOX_PORT = 8010

# The local listener's defaults match the Django integration guide's URLs.
LISTEN_HOST = "127.0.0.1"
LISTEN_PORT = 8000
WEBHOOK_PATH = "/api/payments/webhook/"
RESPONSE_PATH = "/api/payments/response/"
DEFAULT_CALLBACK_URL = f"http://{LISTEN_HOST}:{LISTEN_PORT}{WEBHOOK_PATH}"
DEFAULT_RESPONSE_URL = f"http://{LISTEN_HOST}:{LISTEN_PORT}{RESPONSE_PATH}"


@dataclass(frozen=True)
class SandboxCredentials:
    """Demo credentials. They are public by design: they only open the local emulator."""

    api_key: str = "pmctl_sandbox_api_key_0f4c2a9e7b1d3c5a"
    secret_key: str = "egy_sk_test_" + "5a1d" * 16
    public_key: str = "egy_pk_test_" + "Pm9cTlSandboxPublicKey0000000000"[:32]
    hmac_secret: str = "5ANDB0X0HMAC0SECRET0000PAYMOBCTL"
    integration_id: int = 4100001  # online card, 3-D Secure, EGP, test
    moto_integration_id: int = 4100002  # saved-card (MOTO) payments, no 3-D Secure, EGP
    auth_integration_id: int = 4100003  # auth/capture card integration, EGP
    wallet_integration_id: int = 4100004  # mobile wallet, EGP
    kiosk_integration_id: int = 4100005  # kiosk (Aman/Masary), EGP
    iframe_id: int = 810001
    merchant_id: int = 1835600  # the ``owner`` / ``merchant_id`` in callbacks
    profile_id: int = 993047
    currency: str = "EGP"

    @property
    def base_url(self) -> str:
        """Where the local sandbox serves its API."""
        return f"http://{SANDBOX_HOST}:{SANDBOX_PORT}"


SANDBOX = SandboxCredentials()
