"""firmware/wifi.py: joining the store's Wi-Fi, against a fake station (no radio here)."""
import wifi
from check import eq, raises
from protocol.errors import ProtocolError


class FakeStation:
    """network.WLAN as far as wifi.connect uses it; joins after `polls` isconnected() calls."""

    def __init__(self, polls):
        self.polls = polls
        self.calls = []

    def active(self, on):
        self.calls.append(("active", on))

    def isconnected(self):
        self.polls -= 1
        return self.polls < 0

    def connect(self, ssid, password):
        self.calls.append(("connect", ssid, password))

    def ifconfig(self):
        return ("192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1")


def _cfg(**wifi_settings):
    return {"reader": "R1", "wifi": wifi_settings}


def test_joins_the_configured_network():
    sta = FakeStation(polls=3)
    eq(wifi.connect(_cfg(ssid="Negozio", password="segreta"), station=sta), "192.168.1.50")
    eq(sta.calls, [("active", True), ("connect", "Negozio", "segreta")])


def test_already_joined_does_not_connect_again():
    sta = FakeStation(polls=0)
    eq(wifi.connect(_cfg(ssid="Negozio", password="x"), station=sta), "192.168.1.50")
    eq(sta.calls, [("active", True)])


def test_gives_up_after_the_timeout():
    sta = FakeStation(polls=10 ** 9)
    eq(wifi.connect(_cfg(ssid="Negozio", password="x"), timeout_ms=300, station=sta), False)


def test_no_wifi_in_config_is_nothing_to_do():
    eq(wifi.connect({"reader": "R1"}, station=FakeStation(0)), None)


def test_unix_port_has_no_radio():
    # here `network` does not exist (unix port, CPython): the host's network is used
    eq(wifi.connect(_cfg(ssid="Negozio", password="x")), None)


def test_malformed_settings_are_named():
    for bad in ({"reader": "R1", "wifi": "Negozio"}, _cfg(password="x"), _cfg(ssid=""),
                _cfg(ssid="x" * 33), _cfg(ssid="Negozio", password=5)):
        e = raises(ProtocolError, wifi.connect, bad, 100, FakeStation(0))
        eq(e.code, "config.wifi")
