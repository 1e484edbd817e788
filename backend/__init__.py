"""The loyalty backend: reader sync API, managers' dashboard, head office's commands.

`loyalty.backend.app.create_app()` builds the Flask app; `flask --app loyalty.backend.app --help` lists
the operator's commands.
"""
