"""A UART made of a TCP socket: the simulated board's line to the PN532 simulator.

The PN532 driver's HSU transport wants what machine.UART gives on the ESP32:
`write(buf)`, `any()` and `readinto(buf) -> n or None`, never blocking. On the unix
port the other end of the line is tools/pn532sim.py, listening on loopback.

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

    def write(self, data):
        # a frame is a few hundred bytes at most: the socket's buffer takes it whole,
        # but a short write is carried on rather than lost, for at most about 100 ms
        view = memoryview(data)
        for _ in range(100):
            if not view:
                return
            try:
                n = self.sock.send(view)
            except OSError as e:
                if e.args and e.args[0] != _EAGAIN:
                    raise  # the line is gone (EPIPE, ECONNRESET): the card task starts again
                n = 0
                self._poll.poll(1)
            view = view[n or 0:]
        raise OSError("PN532 line stuck")

    def any(self):
        return 1 if self._poll.poll(0) else 0

    def readinto(self, buf):
        try:
            n = self.sock.readinto(buf)
        except OSError:  # EAGAIN: nothing there after all
            return None
        if n == 0:
            raise OSError("PN532 line closed")
        return n

    def close(self):
        self.sock.close()
