"""A reader's network link that tests and the demo can cut: a TCP relay on loopback.

The reader's backend address points at the relay; the relay forwards each connection to
the backend. Faults apply to new connections (the firmware makes one per request):

    link = Link(("127.0.0.1", 8000)).start()   # link.url: give it to the reader
    link.cut()                 # connections are closed at once: a dead network
    link.drop("request", 1)    # the next request is read, never forwarded, then the link drops
    link.drop("answer", 1)     # the next request is forwarded and answered, the answer dropped
    link.restore()
    link.stop()

"request" drops a batch before the server commits it; "answer" after: the reader does
not know its batch was stored, and must send it again.
"""
import socket
import threading

CHUNK = 65536


class Link:
    def __init__(self, target, host="127.0.0.1"):
        self.target = target
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(64)
        self.url = "http://%s:%d" % (host, self.listener.getsockname()[1])
        self.lock = threading.Lock()
        self.down = False
        self.faults = []  # pending one-shot faults, oldest first: "request" or "answer"
        self.dropped = {"request": 0, "answer": 0, "cut": 0}
        self.forwarded = 0
        self.open = set()
        self.stopping = False

    # -- control ------------------------------------------------------------------
    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def cut(self):
        with self.lock:
            self.down = True
            conns = list(self.open)
        for s in conns:  # what is in flight dies too
            _close(s)

    def restore(self):
        with self.lock:
            self.down = False
            self.faults.clear()

    def drop(self, when, count=1):
        if when not in ("request", "answer"):
            raise ValueError("drop 'request' or 'answer', not %r" % when)
        with self.lock:
            self.faults.extend([when] * count)

    def stop(self):
        self.stopping = True
        self.cut()
        _close(self.listener)

    # -- relay --------------------------------------------------------------------
    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                fault = "cut" if self.down else (self.faults.pop(0) if self.faults else None)
            if fault == "cut":
                self.dropped["cut"] += 1
                _close(client)
                continue
            threading.Thread(target=self._serve, args=(client, fault), daemon=True).start()

    def _serve(self, client, fault):
        with self.lock:
            self.open.add(client)
        upstream = None
        try:
            if fault == "request":
                _read_request(client)
                self.dropped["request"] += 1
                return
            upstream = socket.create_connection(self.target, timeout=30)
            with self.lock:
                self.open.add(upstream)
            upstream.sendall(_read_request(client))
            if fault == "answer":
                _read_all(upstream)  # the server has answered, so it has committed
                self.dropped["answer"] += 1
                return
            while True:
                data = upstream.recv(CHUNK)
                if not data:
                    break
                client.sendall(data)
            self.forwarded += 1
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                if s is not None:
                    with self.lock:
                        self.open.discard(s)
                    _close(s)


def _read_request(sock):
    """One whole HTTP request (head and Content-Length body) from the reader."""
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(CHUNK)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(CHUNK)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _read_all(sock):
    while sock.recv(CHUNK):
        pass


def _close(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
