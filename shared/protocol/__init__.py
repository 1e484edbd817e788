"""Sans-I/O code shared by the reader (MicroPython) and the backend (CPython).

Bytes or values in, values out: no sockets, files, clocks or logging in here.
Modules:
  compat     the one place where the two runtimes differ
  canonical  canonical JSON encoding (the bytes that get hashed and signed)
  errors     error codes and their texts, shared by reader, backend and dashboard
  hmac256    HMAC-SHA256 (MicroPython's hashlib has no hmac)
  engine     the discount engine (sconto corrente)
  records    journal records, the hash chain, sync batches and their signature
  till       the till link messages and their validation
  syncmsg    sync responses and down-sync deltas, validated
"""
