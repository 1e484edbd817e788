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
  loyaltycard  card keys, the NTAG loyalty record and the loyalty applet's APDUs
  ndef       NDEF messages (NFC Forum NDEF 1.0), decoded in place and encoded
  ntag       NTAG21x memory: the capability container, the TLVs, GET_VERSION
  ntagsig    the NTAG originality signature (ECDSA on secp128r1 over the UID)
  cardread   identify(): which card is in the field, by SAK, applet or NDEF record
"""
