"""A UART made of a TCP socket: the simulated board's line to a simulator.

It has the methods of the ESP32's machine.UART that the drivers use, with the same
meanings, so a driver cannot tell it from the real bus: `init(...)` (the line settings;
a socket has no baud rate, so they are only kept), `deinit()` (the line is let go),
`write(buf) -> n`, `any() -> n` (a nonzero count when bytes are waiting),
`read([nbytes]) -> bytes or None` and `readinto(buf[, nbytes]) -> n or None`, never
blocking (the ESP32's UART with timeout=0). On the unix port the other end of the
line is sim/pn532sim.py or sim/iso7816sim.py, listening on loopback.

    uart = SocketUart("127.0.0.1", 7003)
    dev = NfcDevice(HSU(uart))
"""
import select
import socket

_EAGAIN = 11  # errno on Linux, the unix port's home


class SocketUart:
    def __init__(self, host, port):
        self.sock = socket.socket()
        self.sock.connect(socket.getaddrinfo(host, port)[0][-1])
        self.sock.setblocking(False)
        self._poll = select.poll()
        self._poll.register(self.sock, select.POLLIN)
        self.settings = {}

    def init(self, baudrate=None, **settings):
        """The line's settings (baud rate, bits, parity, stop): kept for whoever looks, as
        the socket carries bytes at whatever rate the drivers ask for."""
        if baudrate is not None:
            settings["baudrate"] = baudrate
        self.settings.update(settings)

    def deinit(self):
        self.sock.close()

    def write(self, data):
        # a frame is a few hundred bytes at most: the socket's buffer takes it whole,
        # but a short write is carried on rather than lost, for at most about 100 ms
        view = memoryview(data)
        for _ in range(100):
            if not view:
                return len(data)
            try:
                n = self.sock.send(view)
            except OSError as e:
                if e.args and e.args[0] != _EAGAIN:
                    raise  # the line is gone (EPIPE, ECONNRESET): the card task starts again
                n = 0
                self._poll.poll(1)
            view = view[n or 0:]
        raise OSError("simulated line stuck")

    def any(self):
        return 1 if self._poll.poll(0) else 0

    def readinto(self, buf, nbytes=None):
        if nbytes is not None:
            buf = memoryview(buf)[:nbytes]
        try:
            n = self.sock.readinto(buf)
        except OSError:  # EAGAIN: nothing there after all
            return None
        if n == 0:
            raise OSError("simulated line closed")
        return n

    def read(self, nbytes=None):
        """The bytes waiting, at most `nbytes` of them; None when there are none."""
        out = b""
        while nbytes is None or len(out) < nbytes:
            buf = bytearray(256 if nbytes is None else nbytes - len(out))
            n = self.readinto(buf)
            if not n:
                break
            out += buf[:n]
        return out or None
