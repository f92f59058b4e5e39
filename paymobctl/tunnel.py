"""Public tunnels for ``listen --tunnel ngrok``: the only module that touches pyngrok.

paymobctl never downloads ngrok: without a binary it says how to install one. Tests replace
the tunnel with a fake through :data:`FACTORIES`; they never start or contact ngrok.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from paymobctl.errors import TunnelError


class Tunnel(Protocol):
    def open(self, port: int) -> str:
        """Expose 127.0.0.1:port; return the public https base URL."""

    def close(self) -> None: ...


def _native_binary(path: str | None) -> str | None:
    """A real ngrok executable (not pyngrok's Python wrapper script that downloads one)."""
    if not path or not Path(path).is_file():
        return None
    try:
        with Path(path).open("rb") as handle:
            if handle.read(2) == b"#!":
                return None
    except OSError:
        return None
    return path


@dataclass
class NgrokTunnel:
    authtoken: str | None
    ngrok_path: str | None = None
    _public_url: str | None = field(default=None, init=False)
    _config: Any = field(default=None, init=False)

    def open(self, port: int) -> str:
        if not self.authtoken:
            raise TunnelError(
                "no ngrok authtoken",
                hint="set NGROK_AUTHTOKEN, or `paymobctl config set ngrok_authtoken -` (from "
                "https://dashboard.ngrok.com/get-started/your-authtoken)",
            )
        try:
            from pyngrok import conf, ngrok
            from pyngrok.exception import PyngrokError
        except ImportError:  # pragma: no cover - pyngrok is a dependency
            raise TunnelError("pyngrok is not installed", hint="pip install pyngrok") from None
        default_path = conf.get_default().ngrok_path
        binary = (
            _native_binary(self.ngrok_path)
            or _native_binary(default_path)
            or _native_binary(shutil.which("ngrok"))
        )
        if binary is None:
            raise TunnelError(
                f"the ngrok binary is not installed (looked at {self.ngrok_path or default_path} and PATH)",
                hint="install it from https://ngrok.com/download (paymobctl never downloads it for you)",
            )
        self._config = conf.PyngrokConfig(
            ngrok_path=binary, auth_token=self.authtoken, monitor_thread=False
        )
        try:
            tunnel = ngrok.connect(str(port), "http", pyngrok_config=self._config)
        except (PyngrokError, OSError) as exc:
            raise TunnelError(
                f"ngrok could not open a tunnel ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                hint="check the authtoken and that this machine can reach ngrok's servers",
            ) from None
        url = str(tunnel.public_url or "")
        if url.startswith("http://"):
            url = "https://" + url.removeprefix("http://")
        self._public_url = url
        return url

    def close(self) -> None:
        if self._config is None:
            return
        from pyngrok import ngrok

        try:
            if self._public_url:
                ngrok.disconnect(self._public_url, pyngrok_config=self._config)
            ngrok.kill(pyngrok_config=self._config)
        except Exception:  # best effort on the way out
            return


def _ngrok(authtoken: str | None) -> Tunnel:
    return NgrokTunnel(authtoken)


FACTORIES: dict[str, Callable[[str | None], Tunnel]] = {"ngrok": _ngrok}


def create(kind: str, authtoken: str | None) -> Tunnel:
    factory = FACTORIES.get(kind)
    if factory is None:
        raise TunnelError(f"unknown tunnel {kind!r}", hint="use --tunnel ngrok")
    return factory(authtoken)


NGROK_BROWSER_WARNING = (
    "ngrok's free plan shows a browser warning page before forwarding browser traffic: the "
    "GET redirect (transaction response callback) stops there until the payer clicks 'Visit "
    "Site'. Webhooks (POST) are not affected. A paid plan or a custom domain avoids it."
)
