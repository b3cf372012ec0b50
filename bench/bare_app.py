"""The ceiling for bench/ingest.py: a Flask app that reads the webhook body and answers 202.

It does the least any webhook receiver must do (route, read the body, answer JSON), so
hub rps / bare rps is the share of the machine's HTTP capacity the hub's own work leaves.

Run it exactly as `hub serve` runs the hub, through hub/gunicorn_app.serve, so both get the
same gunicorn options (worker class, workers, threads, keepalive, timeouts, no access log):

    .venv/bin/python bench/bare_app.py --port 8765 --workers 2 --threads 8
"""

from __future__ import annotations

import argparse
from typing import Any

from flask import Flask, Response, jsonify, request


def create_bare_app() -> Flask:
    app = Flask(__name__)

    @app.post("/webhooks/<name>")
    def receive(name: str) -> Response:
        request.get_data()  # read the whole body, as the hub does
        response = jsonify({"status": "accepted"})
        response.status_code = 202
        return response

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    from hub import gunicorn_app

    def load(self: Any) -> Flask:  # each gunicorn worker builds the bare app, not the hub
        return create_bare_app()

    # Same code path and options as `hub serve`; only the WSGI app differs.
    gunicorn_app.HubApplication.load = load  # type: ignore[method-assign]
    gunicorn_app.serve(host=args.host, port=args.port, workers=args.workers, threads=args.threads)


if __name__ == "__main__":
    main()
