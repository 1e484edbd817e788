"""A small HTTP/1.1 client on asyncio streams: what the sync client needs and no more.

One request per connection (`Connection: close`), a body sent in pieces so a batch is
streamed from the journal without being copied, an answer read up to a size limit, and
a timeout on the whole exchange so a dead network never holds the reader.

    status, body = await request("127.0.0.1", 8000, "GET", "/api/v1/sync/rules?since=3", {})
"""
import asyncio

from protocol.errors import SyncError

MAX_HEAD = 2048


def split_url(url):
    """'http://host:port/prefix' -> (host, port, prefix)."""
    if not url.startswith("http://"):
        raise SyncError("sync.network", "backend", "only http:// URLs are supported: " + url)
    rest = url[7:]
    slash = rest.find("/")
    hostport, prefix = (rest, "") if slash < 0 else (rest[:slash], rest[slash:].rstrip("/"))
    host, _, port = hostport.partition(":")
    return host, int(port or 80), prefix


async def _exchange(host, port, method, path, headers, pieces, length, max_answer):
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
        status_line = await reader.readline()
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise SyncError("sync.http", "status", "bad status line %r" % status_line[:40])
        status = int(parts[1])
        clen = -1
        seen = len(status_line)
        while True:
            line = await reader.readline()
            seen += len(line)
            if seen > MAX_HEAD:
                raise SyncError("sync.http", "headers", "longer than %d bytes" % MAX_HEAD)
            if not line:
                raise SyncError("sync.http", "headers", "connection closed in the headers")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                try:
                    clen = int(value.strip())
                except ValueError:
                    raise SyncError("sync.http", "content-length", "not a number")
        if clen > max_answer:
            raise SyncError("sync.too_long", "content-length", "%d bytes, limit %d" % (clen, max_answer))
        if clen >= 0:
            body = await reader.readexactly(clen) if clen else b""
        else:
            body = await reader.read(max_answer + 1)
            if len(body) > max_answer:
                raise SyncError("sync.too_long", "body", "over %d bytes" % max_answer)
        return status, body
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def request(host, port, method, path, headers, pieces=(), length=0, timeout=10, max_answer=16384):
    """(status, body). Network trouble becomes SyncError('sync.network'), a bad answer 'sync.http'."""
    try:
        return await asyncio.wait_for(
            _exchange(host, port, method, path, headers, pieces, length, max_answer), timeout)
    except asyncio.TimeoutError:
        raise SyncError("sync.network", "", "no answer within %d s" % timeout)
    except EOFError:
        raise SyncError("sync.http", "body", "connection closed before the whole answer")
    except OSError as e:
        raise SyncError("sync.network", "", "connection failed: %s" % e)
