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
    # minimisation and retention (backend/privacy/minimise.py, retention.py; DESIGN.md section 7).
    # Months are calendar months back from the run's time in UTC (retention.months_back).
    "RETURN_WINDOW_DAYS": 30,     # the default; a return within it still finds its sale's lines
    "PROFILING_MONTHS": 12,       # Garante, fidelity cards 24 Feb 2005: profiling data at most 12 months
    "MARKETING_MONTHS": 24,       # same provvedimento: marketing data at most 24 months
    "CARE_CONTACT_MONTHS": 26,    # the 24-month legal guarantee plus 2 to report a defect (Codice del consumo, art. 132)
    "TRAIL_MONTHS": 60,           # proves what was done with customer data until claims are time-barred (c.c. art. 2947: 5 years)
    "VIEWS_MONTHS": 12,           # at least 6 (Garante, system administrators 27 Nov 2008); 12 answers "who saw my data" for the profiling year
    "CLOSED_ACCOUNT_MONTHS": 3,   # a closed account is erased after this: its last receipts' return window and a complaint about them
    "CONSENT_HISTORY_MONTHS": 60,  # superseded consents and erased customers' consents: proof for the same 5 years as the trail
    "RETENTION_AT": "03:30",      # the server's daily fold and retention, local time: outside opening hours
    # the shopper's page (backend/shopper/): one-time codes by e-mail, sent through this server
    "SMTP_HOST": "localhost",     # the mail server the codes go through (the host's own MTA)
    "SMTP_PORT": 25,
    "MAIL_FROM": "loyalty@localhost",  # the codes' sender address: the chain's own
    "SHOPPER_CODE_MINUTES": 10,   # a code is good this long, for SHOPPER_CODE_TRIES tries
    "SHOPPER_CODE_TRIES": 5,
    "SHOPPER_CODES_PER_HOUR": 3,  # codes per customer per hour: more would let anyone flood their mailbox
    "SHOPPER_SESSION_MINUTES": 30,  # a shopper is signed out this long after signing in
}
