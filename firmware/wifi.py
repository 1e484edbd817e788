"""Joins the store's Wi-Fi at boot, before the reader starts syncing.

The config's "wifi" ({"ssid": ..., "password": ...}, written by tools/flash provision)
names the network. On the unix port (simulated and virtual boards) there is no `network`
module: the host's network is already up, and connect() does nothing.

    import wifi
    wifi.connect(board.cfg)   # the address, None (nothing to do) or False (timed out)

A timeout is not fatal: the reader grants discounts offline and syncs once the network is
there (the ESP32's station keeps trying to join after connect() gave up waiting).
"""
from drivers import sleep_ms, ticks_diff, ticks_ms
from protocol.errors import ProtocolError


def settings(cfg):
    """(ssid, password) from the config, None without "wifi"; ProtocolError config.wifi if malformed."""
    w = cfg.get("wifi")
    if w is None:
        return None
    if not isinstance(w, dict):
        raise ProtocolError("config.wifi", "wifi", "not an object")
    ssid, password = w.get("ssid"), w.get("password", "")
    if not isinstance(ssid, str) or not ssid or len(ssid) > 32:
        raise ProtocolError("config.wifi", "wifi.ssid", "1 to 32 characters")
    if not isinstance(password, str) or len(password) > 64:
        raise ProtocolError("config.wifi", "wifi.password", "a string of at most 64 characters")
    return ssid, password


def _station():
    try:
        import network
    except ImportError:
        return None  # unix port: the host's network
    return network.WLAN(network.STA_IF)


def connect(cfg, timeout_ms=20000, station=None):
    """Join the config's Wi-Fi; wait at most timeout_ms for an address.

    Returns the address, None when there is nothing to do (no "wifi", no `network`
    module), False on timeout. `station`: a network.WLAN (tests pass a fake)."""
    wanted = settings(cfg)
    if wanted is None:
        return None
    sta = station if station is not None else _station()
    if sta is None:
        return None
    sta.active(True)
    if not sta.isconnected():
        sta.connect(wanted[0], wanted[1])
        start = ticks_ms()
        while not sta.isconnected():
            if ticks_diff(ticks_ms(), start) >= timeout_ms:
                # the password is never printed: it would end up on the console's log
                print("wifi: %s not joined within %d s; the reader goes on offline" % (
                    wanted[0], timeout_ms // 1000))
                return False
            sleep_ms(100)
    return sta.ifconfig()[0]
