"""The shopper's own page (/me/...): sign in with a one-time code, see and download what the
scheme holds, change profiling and marketing consent. views.py is the blueprint; codes.py
and mail.py hold what it needs without Flask."""
