"""A customer's name as search finds it, kept in step with the name.

Two forms, both written by set_search_name whenever the name is set, changed or erased:
  customers.name_key  the whole name as backend/checks.name_key compares it
                      ("D’Angelo Niccolò" -> "dangelo niccolo");
  customer_words      each word of it, one row per (word, customer): its primary key lets
                      search find the customers whose name has a word beginning with what
                      was typed by a range on the index, not a scan of every name.

    with transaction(db):
        set_search_name(db, 7, "Niccolò D'Angelo")
    db.execute("SELECT ... WHERE p.id IN (%s)" % word_prefix_sql()[0], word_prefix_sql()[1] ... )
"""
from loyalty.backend.checks import name_key

_TOP = "\U0010ffff"  # above every character in SQLite's byte order of UTF-8 text


def words(name):
    """The distinct words of `name` as search compares them; [] for None."""
    key = name_key(name)
    return sorted(set(key.split())) if key else []


def set_search_name(db, customer_id, name):
    """Inside the caller's transaction: the customer's name_key and words for `name`
    (None: both gone, as at erasure)."""
    db.execute("UPDATE customers SET name_key = ? WHERE id = ?", [name_key(name), customer_id])
    db.execute("DELETE FROM customer_words WHERE customer_id = ?", [customer_id])
    db.conn.executemany("INSERT INTO customer_words(word, customer_id) VALUES(?, ?)",
                        [(w, customer_id) for w in words(name)])


def word_prefix_sql(prefix):
    """SQL selecting the ids of customers with a word of their name beginning with
    `prefix` (a word of name_key), and its parameters: a range on the primary key."""
    return "SELECT customer_id FROM customer_words WHERE word >= ? AND word < ?", [prefix, prefix + _TOP]
