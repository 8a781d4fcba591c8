"""uvicorn, told to close open event streams (with a retry hint) when asked to stop."""

from __future__ import annotations

from typing import Any

import uvicorn

from docflow.config import get_settings


class Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: Any) -> None:
        # Streams never end by themselves; tell them to finish so shutdown is not held up.
        hub = getattr(getattr(self.config.loaded_app, "state", None), "hub", None)
        app = self.config.loaded_app
        while hub is None and app is not None:
            app = getattr(app, "app", None)
            hub = getattr(getattr(app, "state", None), "hub", None)
        if hub is not None:
            hub.begin_shutdown()
        super().handle_exit(sig, frame)


def serve(host: str, port: int, workers: int = 1) -> None:
    options = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "proxy_headers": True,
        "forwarded_allow_ips": get_settings().forwarded_allow_ips,
        "timeout_graceful_shutdown": 10,
        "log_config": None,
        "access_log": False,
    }
    if workers > 1:
        # uvicorn's own supervisor runs the processes; each still ends its streams on shutdown
        # through the app's lifespan, after the graceful-shutdown timeout.
        uvicorn.run("docflow.app:create_app", **options)  # type: ignore[arg-type]
        return
    Server(uvicorn.Config("docflow.app:create_app", **options)).run()  # type: ignore[arg-type]
