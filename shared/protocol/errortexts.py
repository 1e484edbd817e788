"""The texts of the error codes (protocol.errors): code|italiano|English, one per line.

A module of its own so that code that only raises errors does not hold the texts;
`errors.text`, `errors.known` and `errors.codes` import it when first called.
"""

# One line per code: code|italiano|English. Strings rather than a dict of tuples: on the
# reader a dict of 60 pairs of strings costs about 15 KB of heap, these about 5. Several
# strings of at most 1.5 KB rather than one: a string needs a block of its size in one
# piece, which a fragmented heap does not always have when the texts are first needed.
# Keep texts short: the reader's display shows the first 16 characters.
_TABLE = """
enc.type|Tipo di dato non ammesso|Value of a type that cannot be encoded
enc.json|JSON non valido|Malformed JSON
enc.canonical|Codifica non canonica|Not in canonical encoding
till.frame|Messaggio cassa illeggibile|Garbled till message
till.checksum|Checksum messaggio cassa errato|Till message checksum mismatch
till.too_long|Messaggio cassa troppo lungo|Till message too long
till.type|Tipo di messaggio sconosciuto|Unknown till message type
till.field|Campo non valido|Invalid field in till message
till.state|Messaggio fuori sequenza|Till message out of sequence
till.unknown_quote|Preventivo sconosciuto|Unknown quote
till.unknown_receipt|Scontrino sconosciuto|Unknown receipt
card.blocked|Carta bloccata|Card blocked
card.unreadable|Carta illeggibile|Card unreadable
card.unknown|Carta non in elenco: tier base|Card not in directory: base tier
disc.journal_full|Memoria piena: nessuno sconto|Journal full: no discount
disc.memory|Memoria esaurita: no sconto|Out of memory: no discount
disc.too_large|Scontrino troppo lungo: no sconto|Receipt too long to record: no discount
disc.journal_error|Errore memoria: sconto annullato|Journal write failed: discount withdrawn
disc.bad_record|Scontrino non registrabile: no sconto|Receipt breaks the record rules: no discount
disc.stale_rules|Sync scaduto: solo sconto base|Sync too old: base discount only
disc.no_rules|Regole assenti: nessuno sconto|No rules loaded: no discount
disc.return_exceeds|Reso oltre il venduto|Return exceeds what was sold
disc.context|Dati sconto non validi|Invalid discount context
disc.original|Vendita originale non valida|Original sale record invalid
"""
_JOURNAL_SYNC = """
journal.torn|Record finale incompleto scartato|Torn last record discarded
journal.corrupt|Journal danneggiato|Journal corrupt
journal.full|Journal pieno|Journal full
journal.nearly_full|Journal quasi pieno|Journal nearly full
journal.ack|Conferma non valida|Invalid acknowledgement
journal.io|Errore scrittura journal|Journal read/write failed
journal.too_large|Scontrino troppo grande|Record too large for the journal
flash.io|Errore memoria flash|Flash read or write failed
sync.http|Risposta HTTP non valida|Malformed HTTP response
sync.status|Server: errore|Server error status
sync.response|Risposta sync non valida|Malformed sync response
sync.memory|Memoria insufficiente|No memory for the answer
sync.too_long|Risposta sync troppo lunga|Sync response too long
sync.network|Rete non disponibile|Network unreachable
sync.signature|Risposta non autenticata|Answer not authenticated
"""
_BATCH_DELTA = """
batch.signature|Firma del lotto non valida|Bad batch signature
batch.stale|Orario del lotto fuori finestra|Batch timestamp outside the window
batch.replay|Richiesta ripetuta|Replayed request
batch.reader|Lettore sconosciuto|Unknown reader
batch.too_large|Lotto troppo grande|Batch over the size limit
batch.gap|Buco nella sequenza|Gap in sequence
batch.chain|Catena hash interrotta|Broken hash chain
batch.totals|Totali del lotto errati|Wrong batch totals
batch.record|Record non valido|Invalid record
batch.status|Stato del lettore non valido|Invalid reader status
delta.format|Aggiornamento non valido|Malformed update
delta.version|Versione aggiornamento errata|Update version does not follow
delta.order|Aggiornamento non ordinato|Update entries not sorted
delta.too_long|Aggiornamento troppo lungo|Update page too long
directory.corrupt|Elenco carte danneggiato|Card directory file corrupt
rules.format|Regole non valide|Malformed rules
config.wifi|Wi-Fi configurato male|Wi-Fi settings malformed
"""
_CARD_TABLE = """
card.forged|Carta contraffatta|Card forged: MAC mismatch
card.no_applet|Non e' una carta fedelta'|Not a loyalty card
card.key|Chiave carta mancante: sync|No key for this card yet: sync
card.not_registered|Carta non registrata|Card not registered
card.removed|Carta allontanata: riprova|Card removed: tap again
card.two|Una carta alla volta|Two cards in the field: one at a time
card.signature|Carta NTAG non originale|NTAG originality signature invalid
"""
_READERS = """
nfc.timeout|Lettore NFC non risponde|NFC controller not answering
nfc.error|Errore lettore NFC|NFC controller error
pn532.checksum|Checksum NFC errato|PN532 frame checksum mismatch
pn532.length|Lunghezza NFC errata|PN532 frame length invalid
pn532.tfi|Risposta NFC inattesa|PN532 frame of unexpected direction
card.mute|Carta muta: reinserire|Card does not answer: insert again
card.atr|Carta a contatti illeggibile|Contact card answer-to-reset unusable
card.protocol|Errore protocollo carta|Card broke the T=0/T=1 protocol
slot.fault|Lettore a contatti guasto|Contact slot or its line faulty
"""
TABLES = (_TABLE, _JOURNAL_SYNC, _BATCH_DELTA, _CARD_TABLE, _READERS)
