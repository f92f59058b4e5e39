"""``python -m paymobctl``."""

from paymobctl.cli import run

if __name__ == "__main__":
    run()
