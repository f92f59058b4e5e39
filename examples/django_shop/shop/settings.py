"""Settings of the example shop. Paymob's keys come from the environment (the guide's .env)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-shop-only-not-a-secret-0000000000000000")
DEBUG = os.environ.get("DJANGO_PRODUCTION", "False") != "True"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

INSTALLED_APPS = ["payments"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "shop.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"

# Paymob (integration guide, "Local Development Setup"). PAYMOB_BASE_URL is the API host: tests
# point it at paymobctl's sandbox; in production it is Paymob's.
PAYMOB_API_KEY = os.environ.get("PAYMOB_API_KEY", "")
PAYMOB_INTEGRATION_ID = int(os.environ.get("PAYMOB_INTEGRATION_ID", "0"))
PAYMOB_MOTO_INTEGRATION_ID = int(os.environ.get("PAYMOB_MOTO_INTEGRATION_ID", "0"))
PAYMOB_IFRAME_ID = int(os.environ.get("PAYMOB_IFRAME_ID", "0"))
PAYMOB_HMAC_SECRET = os.environ.get("PAYMOB_HMAC_SECRET", "")
PAYMOB_BASE_URL = os.environ.get("PAYMOB_BASE_URL", "https://accept.paymob.com")
