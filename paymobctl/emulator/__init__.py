"""The local Paymob emulator behind ``paymobctl sandbox`` (an ASGI app from a factory)."""

from paymobctl.emulator.admin import credentials_table
from paymobctl.emulator.app import create_app

__all__ = ["create_app", "credentials_table"]
