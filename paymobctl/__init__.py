"""paymobctl: the command-line tool and local webhook sandbox for Paymob integrations."""

__version__ = "0.1.0"
