"""The card keys this reader verifies cards with: one issuer key per key epoch.

They come down from the backend wrapped in the reader's own key (docs/protocol.md,
"Down: card keys") and are kept on flash as they came, wrapped: on the ESP32 flash
encryption protects them, and a copy of the file without the reader's key is useless.
`get(epoch)` unwraps; cardread calls it with the epoch a card names.

    keys = CardKeys("/keys.json", reader_key)
    keys.get(1)      # 32 bytes, or None: that epoch is not known here (yet)
"""
from protocol import canonical
from protocol.compat import hexstr, unhexlify
from protocol.errors import EncodingError
from protocol.loyaltycard import unwrap_issuer_key

import fsutil


class CardKeys:
    def __init__(self, path, reader_key):
        self.path, self.reader_key = path, reader_key
        self.version = 0
        self._wrapped = {}
        self.error = None
        data = fsutil.read_or_none(path)
        if data is not None:
            try:
                obj = canonical.decode(data)
                self._wrapped = {e: unhexlify(k) for e, k in obj["keys"]}
                self.version = obj["version"]
            except (EncodingError, KeyError, TypeError, ValueError) as e:
                # a damaged file: no keys (cards read as card.key) until the next sync
                self.error = "flash.io"
                self._wrapped, self.version = {}, 0

    def get(self, epoch):
        wrapped = self._wrapped.get(epoch)
        return None if wrapped is None else unwrap_issuer_key(self.reader_key, epoch, wrapped)

    def replace(self, version, keys):
        """The backend's keys ((epoch, wrapped bytes) pairs, from syncmsg.parse_keys_answer)."""
        obj = {"keys": [[e, hexstr(k)] for e, k in keys], "version": version}
        fsutil.write_atomic(self.path, lambda f: canonical.encode(obj, f))
        self._wrapped = dict(keys)
        self.version = version
        self.error = None
