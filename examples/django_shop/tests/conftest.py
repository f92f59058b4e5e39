"""Point the app at paymobctl's sandbox and the sandbox's callbacks at the live server."""

import pytest


@pytest.fixture(autouse=True)
def paymob(paymob_sandbox, live_server, settings):
    settings.PAYMOB_BASE_URL = paymob_sandbox.base_url
    settings.PAYMOB_API_KEY = paymob_sandbox.api_key
    settings.PAYMOB_INTEGRATION_ID = paymob_sandbox.integration_id
    settings.PAYMOB_MOTO_INTEGRATION_ID = paymob_sandbox.moto_integration_id
    settings.PAYMOB_IFRAME_ID = paymob_sandbox.iframe_id
    settings.PAYMOB_HMAC_SECRET = paymob_sandbox.hmac_secret
    paymob_sandbox.set_callback_urls(
        f"{live_server.url}/api/payments/webhook/", f"{live_server.url}/api/payments/response/"
    )
    return paymob_sandbox
