"""The CRM integration hub. `create_app()` is the only thing this package does on import."""

from __future__ import annotations

from typing import Any

from flask import Flask

from hub.config import Settings


def create_app(settings: Settings | None = None, runtime: Any = None) -> Flask:
    """The WSGI app. Tests pass their own Settings (or a whole Runtime); production reads HUB_*.

    Connections to the database and Redis are made here, per process, never at import.
    """
    from hub.runtime import Runtime
    from hub.web import (
        api,
        compliance_api,
        contacts_admin_api,
        health,
        mappings_api,
        sync_api,
        webhooks,
    )
    from hub.web.errors import register_error_handlers
    from hub.web.group_commit import GroupCommitter

    rt = runtime or Runtime.from_settings(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = rt.settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["hub.runtime"] = rt
    committer = GroupCommitter(rt.engine, after_commit=webhooks.signal_batch(rt))
    app.extensions["hub.group_commit"] = committer
    rt.closers.append(committer.close)
    app.extensions["hub.connections"] = webhooks.ConnectionCache(
        rt.settings.connection_cache_seconds
    )
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(contacts_admin_api.bp)
    app.register_blueprint(compliance_api.bp)
    app.register_blueprint(mappings_api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(sync_api.bp)
    register_error_handlers(app)
    return app
