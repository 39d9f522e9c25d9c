"""A stand-in for the YogaFlow backend: the smallest web app that shows how the migrator and
an app share an image (examples/backend/Dockerfile) and how Railway's health check sees them.

GET /health answers 200 only when the database in DATABASE_URL is reachable and its schema is
at EXPECTED_SCHEMA_VERSION (the version this code was written against; the migrator's history
table says which is applied), and 503 otherwise, naming why. SIGTERM stops it cleanly (exit 0),
as uvicorn does. The standard library only, plus Debian's psycopg2 for PostgreSQL.
"""

import json
import os
import signal
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

EXPECTED_SCHEMA_VERSION = int(os.environ.get("EXPECTED_SCHEMA_VERSION", "5"))
HISTORY = "SELECT max(version) FROM refinery_schema_history"


def log(message):
    print(f"backend: {message}", file=sys.stderr, flush=True)


def schema_version(url):
    """The applied schema version, or an exception saying why there is none."""
    parts = urlsplit(url)
    # SQLAlchemy spells the driver into the scheme (postgresql+asyncpg, sqlite+aiosqlite).
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        path = url.split(":///", 1)[1].split("?", 1)[0]
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=3)
        try:
            return db.execute(HISTORY).fetchone()[0]
        finally:
            db.close()
    if scheme in ("postgres", "postgresql"):
        import psycopg2  # only needed for PostgreSQL

        dsn = "postgresql" + url[len(parts.scheme):]
        db = psycopg2.connect(dsn, connect_timeout=3)
        try:
            with db.cursor() as cur:
                cur.execute(HISTORY)
                return cur.fetchone()[0]
        finally:
            db.close()
    raise ValueError(f"unsupported DATABASE_URL scheme {parts.scheme!r}")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/health":
            return self.answer(404, {"error": "not found"})
        url = os.environ.get("DATABASE_URL", "sqlite:///./yogaflow.db")
        try:
            version = schema_version(url)
        except Exception as e:  # any failure is "not healthy", never a crash
            # The driver's message, never the URL: it would carry the password.
            return self.answer(503, {"status": "database unreachable", "error": type(e).__name__})
        if version != EXPECTED_SCHEMA_VERSION:
            return self.answer(
                503,
                {"status": "schema not ready", "schema_version": version,
                 "expected": EXPECTED_SCHEMA_VERSION},
            )
        self.answer(200, {"status": "ok", "schema_version": version})

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        log(fmt % args)


def main():
    port = int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)

    def stop(signum, _frame):
        log(f"{signal.Signals(signum).name} received, shutting down")
        # shutdown() waits for serve_forever to return: not from its own thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"listening on port {port} (schema version {EXPECTED_SCHEMA_VERSION} expected)")
    server.serve_forever()
    server.server_close()
    log("stopped")


if __name__ == "__main__":
    main()
