"""The managers' dashboard: the pages (views.py, a blueprint with its templates in
templates/dashboard/) over the data they show (overview.py, plain dicts, no Flask)."""
