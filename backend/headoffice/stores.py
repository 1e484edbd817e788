"""Stores and readers: adding them, and the reader's provisioning file (its key).

    add_store(db, "S1", "Milano Centro")          # tz Europe/Rome
    key = add_reader(db, "R1", "S1")              # 32 random bytes, kept as key_hex
    write_provisioning("R1.json", "R1", key, "http://10.0.0.5:8000", "S1")
"""
import json
import os
import zoneinfo

from loyalty.backend.db import transaction
from loyalty.backend.headoffice import common
from loyalty.backend.headoffice.common import AlreadyExists, InvalidValue, NotFound, need_id, need_text
from loyalty.i18n import _


def add_store(db, id, name, tz="Europe/Rome"):
    """A new store; `tz` is its IANA time zone (its days and the dashboard's times are local)."""
    need_id(id, "id")
    need_text(name, 1, 100, "name")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidValue("tz", _("%(tz)r is not a known time zone (e.g. Europe/Rome)", tz=tz))
    with transaction(db):
        if db.execute("SELECT 1 FROM stores WHERE id=?", [id]).fetchone():
            raise AlreadyExists("id", _("store %(store)s exists already", store=id))
        db.execute("INSERT INTO stores(id, name, tz) VALUES(?, ?, ?)", [id, name, tz])


def add_reader(db, id, store_id, name=""):
    """A new reader in `store_id`; returns its key (32 random bytes), stored as key_hex.

    The key is what the reader signs with: hand it over only through write_provisioning.
    """
    need_id(id, "id")
    need_text(name, 0, 100, "name")
    key = os.urandom(32)
    with transaction(db):
        if not db.execute("SELECT 1 FROM stores WHERE id=?", [store_id]).fetchone():
            raise NotFound("store", _("no store %(store)r: add it first", store=store_id))
        if db.execute("SELECT 1 FROM readers WHERE id=?", [id]).fetchone():
            raise AlreadyExists("id", _("reader %(reader)s exists already", reader=id))
        db.execute("INSERT INTO readers(id, store_id, name, key_hex, created) VALUES(?, ?, ?, ?, ?)",
                   [id, store_id, name, key.hex(), common.now()])
    return key


def write_provisioning(path, reader_id, key, backend_url, store_id):
    """Write the reader's provisioning file (tools/flash reads it): JSON, mode 0600.

    {"reader", "key" (hex), "backend", "store", "created"}. An existing file is never
    overwritten (FileExistsError): it may belong to a reader already flashed.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    data = json.dumps({"reader": reader_id, "key": key.hex(), "backend": backend_url,
                       "store": store_id, "created": common.now()}, indent=2, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    return path
