"""The life cycle the simulators share: a listening socket on loopback, a server thread,
and a socket pair that wakes the thread's select() when a test changes something.

A simulator subclasses LoopbackServer, calls its __init__ with a thread name, and
implements `_loop_once()` (one select() round) and `_sockets()` (its open connections,
closed on stop). Exceptions in a round are kept in `errors` (the tests assert it stays
empty) and the server keeps serving; `_on_error()` may drop a broken connection.

    class PN532Sim(LoopbackServer): ...
    with PN532Sim() as sim:            # start() ... stop()
        sim.port
"""
import socket
import threading


class LoopbackServer:
    def __init__(self, name, host="127.0.0.1", backlog=1):
        self._name = name
        self._lock = threading.RLock()
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind((host, 0))
        self._srv.listen(backlog)
        self.port = self._srv.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = None
        self._stopping = False
        self.errors = []  # exceptions the server thread met

    def start(self):
        self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping = True
        self._wake()
        if self._thread is not None:
            self._thread.join(5)
        for s in list(self._sockets()) + [self._srv, self._wake_r, self._wake_w]:
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _serve(self):
        while not self._stopping:
            try:
                self._loop_once()
            except Exception as e:  # kept for the tests; the simulator keeps serving
                self.errors.append(e)
                self._on_error()

    def _on_error(self):
        pass

    def _sockets(self):
        return ()

    def _loop_once(self):
        raise NotImplementedError
