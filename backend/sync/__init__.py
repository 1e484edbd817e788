"""The readers' side of the backend: the sync API (api.py, a blueprint), what it does with
a batch (ingest.py), its fast canonical JSON (fastjson.py) and how a reader's sync state
is judged (readerstate.py). Only api.py loads Flask."""
