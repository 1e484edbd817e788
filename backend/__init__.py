"""The loyalty backend: reader sync API, managers' dashboard, head office's commands.

`backend.app.create_app()` builds the Flask app; `flask --app backend.app --help` lists
the operator's commands.
"""
