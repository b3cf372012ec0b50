"""`hub serve`: gunicorn with the app factory, configured for this machine's measurements.

gthread workers keep connections alive and overlap the database commit and the Redis round
trip of concurrent deliveries; 2 processes suit 2 cores (bench/README.md has the figures).
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class HubApplication(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from hub import create_app

        return create_app()


def serve(*, host: str, port: int, workers: int, threads: int, log_level: str = "info") -> None:
    HubApplication({
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": None,
        "loglevel": log_level.lower(),
        # one shared control socket path would make two hubs on one machine collide
        "control_socket_disable": True,
    }).run()
