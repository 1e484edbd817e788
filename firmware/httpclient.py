"""A small HTTP/1.1 client on asyncio streams: what the sync client needs and no more.

One request per connection (`Connection: close`), a body sent in pieces so a batch is
streamed from the journal without being copied, an answer read up to a size limit, and
a timeout on the whole exchange so a dead network never holds the reader. Of the
answer's headers only X-Signature is kept (the backend signs its answers; the sync
client checks it): one small bytes object, not a dict of every header.

    status, body, signature = await request("127.0.0.1", 8000, "GET", "/api/v1/sync/rules?since=3", {})
"""
import asyncio

from protocol.errors import SyncError

MAX_HEAD = 2048
MAX_SIGNATURE = 64  # hex HMAC-SHA256: a longer X-Signature is kept as none at all
CHUNK = 1024  # bytes read at a time: an answer is never read in one large piece


def split_url(url):
    """'http://host:port/prefix' -> (host, port, prefix)."""
    if not url.startswith("http://"):
        raise SyncError("sync.network", "backend", "only http:// URLs are supported: " + url)
    rest = url[7:]
    slash = rest.find("/")
    hostport, prefix = (rest, "") if slash < 0 else (rest[:slash], rest[slash:].rstrip("/"))
    host, _, port = hostport.partition(":")
    return host, int(port or 80), prefix


# The head of every answer is read into this one buffer (the sync task makes one request
# at a time): growing a bytes object chunk by chunk left small holes all over the heap.
_HEAD_BUF = bytearray(MAX_HEAD + 4)


async def _read_head(reader):
    """The status line and headers (at most MAX_HEAD bytes), and the body bytes read with them.

    Read in chunks, not by readline: MicroPython's readline has no limit, and a line
    without end from a broken server would fill the heap.
    """
    buf = _HEAD_BUF
    view = memoryview(buf)
    n = 0
    while True:
        end = buf.find(b"\r\n\r\n", 0, n)
        if end >= 0:
            return bytes(view[:end + 2]), bytes(view[end + 4:n])
        end = buf.find(b"\n\n", 0, n)  # bare LF line ends, as lenient clients accept
        if end >= 0:
            return bytes(view[:end + 1]), bytes(view[end + 2:n])
        if n >= MAX_HEAD:
            raise SyncError("sync.http", "headers", "longer than %d bytes" % MAX_HEAD)
        got = await reader.readinto(view[n:min(n + CHUNK, len(buf))])
        if not got:
            if buf.find(b"\n", 0, n) < 0:
                raise SyncError("sync.http", "status", "bad status line %r" % bytes(view[:min(n, 40)]))
            raise SyncError("sync.http", "headers", "connection closed in the headers")
        n += got


async def _read_body(reader, first, clen, max_answer, into=None):
    """The body: `clen` bytes (-1: up to the end of the connection), at most max_answer.

    With `into` (a buffer allocated once) the body is read into it and its size returned.
    """
    if into is not None:
        view = memoryview(into)
        n = len(first)
        if n > len(into):
            raise SyncError("sync.too_long", "body", "over %d bytes" % len(into))
        view[:n] = first
        while clen < 0 or n < clen:
            chunk = await reader.read(min(CHUNK, len(into) + 1 - n))
            if not chunk:
                if clen >= 0:
                    raise SyncError("sync.http", "body", "connection closed after %d of %d bytes" % (n, clen))
                break
            if n + len(chunk) > len(into):
                raise SyncError("sync.too_long", "body", "over %d bytes" % len(into))
            view[n:n + len(chunk)] = chunk
            n += len(chunk)
        return n
    if clen >= 0:
        # one block of the final size, filled in chunks: no second copy of the answer
        body = bytearray(clen)
        n = min(len(first), clen)
        body[:n] = first[:n]
        view = memoryview(body)
        while n < clen:
            chunk = await reader.read(min(CHUNK, clen - n))
            if not chunk:
                raise SyncError("sync.http", "body", "connection closed after %d of %d bytes" % (n, clen))
            view[n:n + len(chunk)] = chunk
            n += len(chunk)
        return body
    # no Content-Length: the answer ends when the server closes; read() returns what has
    # arrived so far, so read on until the end
    chunks = [first] if first else []
    n = len(first)
    while n <= max_answer:
        # when the pieces kept so far fill a cut-up heap they are dropped and the answer
        # read on to its end or the limit: one over the limit is still sync.too_long
        try:
            chunk = await reader.read(CHUNK)  # no room: raised before anything is read
        except MemoryError:
            if chunks is None:
                raise  # nothing left to drop
            chunks = None
            continue
        if not chunk:
            break
        n += len(chunk)
        if chunks is not None:
            try:
                chunks.append(chunk)
            except MemoryError:
                chunks = None
    if n > max_answer:
        raise SyncError("sync.too_long", "body", "over %d bytes" % max_answer)
    if chunks is None:
        raise MemoryError
    body = bytearray(n)
    n = 0
    for chunk in chunks:
        body[n:n + len(chunk)] = chunk
        n += len(chunk)
    return body


async def _exchange(host, port, method, path, headers, pieces, length, max_answer, into):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n" % (
            method, path, host, length)
        for k in headers:
            head += "%s: %s\r\n" % (k, headers[k])
        writer.write((head + "\r\n").encode())
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
        await writer.drain()
        head, first = await _read_head(reader)
        lines = head.split(b"\n")
        parts = lines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise SyncError("sync.http", "status", "bad status line %r" % lines[0][:40])
        status = int(parts[1])
        clen = -1
        signature = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                value = value.strip()
                if not value.isdigit():
                    raise SyncError("sync.http", "content-length", "not a number")
                clen = int(value)
            elif name == b"x-signature":
                value = value.strip()
                signature = value if len(value) <= MAX_SIGNATURE else b""
        del head, lines  # the head (up to 2 KB) is not kept while the body is read
        if clen > max_answer:
            raise SyncError("sync.too_long", "content-length", "%d bytes, limit %d" % (clen, max_answer))
        return status, await _read_body(reader, first, clen, max_answer, into), signature
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def request(host, port, method, path, headers, pieces=(), length=0, timeout=10, max_answer=16384,
                  into=None):
    """(status, body, signature). Network trouble becomes SyncError('sync.network'), a bad answer 'sync.http'.

    With `into`, a bytearray allocated once, the body goes there and (status, size,
    signature) is returned: the answers that come in series (directory pages) need no new
    block each.
    `signature` is the answer's X-Signature header as bytes (b"" when there is none).
    """
    if into is not None:
        max_answer = len(into)
    try:
        return await asyncio.wait_for(
            _exchange(host, port, method, path, headers, pieces, length, max_answer, into), timeout)
    except asyncio.TimeoutError:
        raise SyncError("sync.network", "", "no answer within %d s" % timeout)
    except MemoryError:
        # no block for the answer in a fragmented heap now: a failed round, tried again later
        raise SyncError("sync.memory", "body", "no room for the answer")
    except EOFError:
        raise SyncError("sync.http", "body", "connection closed before the whole answer")
    except OSError as e:
        raise SyncError("sync.network", "", "connection failed: %s" % e)
