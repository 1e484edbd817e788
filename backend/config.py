"""The backend's configuration defaults, apart from the app so that domain code reads them
without loading Flask (backend/dashboard/overview.py falls back on them).

The factory (backend/app.py) starts from these, then the instance folder's `config.py`,
then its `test_config`:

    >>> DEFAULTS["MAX_BATCH_BYTES"]
    262144
"""
from loyalty.protocol import status

DEFAULTS = {
    "LANGUAGE": None,             # the pages' language unless a manager chose; default:
                                  # LOYALTY_LANG's, else Italian
    "DATABASE": None,             # default: <instance>/loyalty.db
    "MAX_BATCH_BYTES": status.MAX_BODY,  # docs/protocol.md: a body over 256 KiB is refused
    "TIMESTAMP_WINDOW": status.TIMESTAMP_WINDOW,  # seconds a request's X-Timestamp may differ from our clock
    "LAGGING_AFTER": 300,         # seconds: no contact, or pending receipts this old -> lagging
    "OFFLINE_AFTER": 1800,        # seconds without contact -> offline
    "SAMPLE_EVERY": 300,          # seconds between pending-receipt samples for the chart
    "REFRESH_SECONDS": 10,        # the dashboard reloads itself this often
    "SESSION_COOKIE_SAMESITE": "Lax",  # the managers' session cookie (HttpOnly is Flask's default)
    "KEEP_DB_CONNECTIONS": False,  # sync requests reuse one connection per server thread (backend/serve.py)
}
