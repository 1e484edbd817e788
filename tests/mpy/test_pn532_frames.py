"""PN532 frames (drivers.pn532frames): exact bytes of known frames, and the stream reader
finding frames however the bytes are cut, past garbage, bad checksums and truncated answers.

Expected bytes are written out by hand from NXP UM0701-02 section 6.2, or computed here
by `_reference()` straight from the manual's definitions, not by the module under test.
"""
from check import eq, raises, without_allocating
from drivers.pn532frames import (
    ACK, ACK_FRAME, ERROR, ERROR_FRAME, INFO, NACK, NACK_FRAME, NONE, TFI_HOST, TFI_PN532,
    FrameError, FrameReader, frame, frame_into, frame_size)


# GetFirmwareVersion and the PN532's answer (IC 32, version 1.6, support 07), from the manual
GFV_COMMAND = b"\x00\x00\xff\x02\xfe\xd4\x02\x2a\x00"
GFV_ANSWER = b"\x00\x00\xff\x06\xfa\xd5\x03\x32\x01\x06\x07\xe8\x00"


class _Rand:
    # a small LCG: the same numbers on both runtimes, whatever their `random` offers
    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n

    def data(self, n):
        return bytes(self.below(256) for _ in range(n))


def _reference(tfi, data):
    # UM0701-02 6.2.1.1 and 6.2.1.2, written out independently of the module
    body = bytes([tfi]) + data
    n = len(body)
    if n <= 255:
        head = bytes([0, 0, 0xFF, n, (256 - n) % 256])
    else:
        hi, lo = n // 256, n % 256
        head = bytes([0, 0, 0xFF, 0xFF, 0xFF, hi, lo, (256 - (hi + lo) % 256) % 256])
    return head + body + bytes([(256 - sum(body) % 256) % 256, 0])


def _events(reader, stream, piece=0):
    """Everything `reader` finds in `stream` fed `piece` bytes at a time (all at once if 0)."""
    got = []
    piece = piece or len(stream) or 1
    for at in range(0, len(stream), piece):
        reader.feed(stream[at:at + piece])
        while True:
            try:
                kind = reader.next()
            except FrameError as e:
                got.append(e.code)
                continue
            if kind == NONE:
                break
            got.append(bytes(reader.info()) if kind == INFO else kind)
    return got


def test_get_firmware_version_command_is_the_manuals_bytes():
    eq(bytes(frame(b"\x02")), GFV_COMMAND)
    buf = bytearray(32)
    n = frame_into(buf, b"\x02")
    eq(bytes(buf[:n]), GFV_COMMAND)
    eq(frame_size(1), len(GFV_COMMAND))
    # SAMConfiguration normal mode, timeout 1 s, IRQ used: D4 14 01 14 01
    eq(bytes(frame(b"\x14\x01\x14\x01")), b"\x00\x00\xff\x05\xfb\xd4\x14\x01\x14\x01\x02\x00")


def test_its_answer_reads_as_tfi_and_data():
    eq(_events(FrameReader(), GFV_ANSWER), [b"\xd5\x03\x32\x01\x06\x07"])


def test_ack_nack_and_error_frames():
    eq(_events(FrameReader(), ACK_FRAME + NACK_FRAME + ERROR_FRAME), [ACK, NACK, ERROR])
    eq(ACK_FRAME, b"\x00\x00\xff\x00\xff\x00")
    eq(NACK_FRAME, b"\x00\x00\xff\xff\x00\x00")
    eq(ERROR_FRAME, b"\x00\x00\xff\x01\xff\x7f\x81\x00")


def test_the_longest_normal_and_the_shortest_extended_frame():
    data = bytes(254)  # LEN 255 with TFI: still a normal frame
    f = bytes(frame(data))
    eq(f[:5], b"\x00\x00\xff\xff\x01", "LEN 255, LCS 01")
    eq(len(f), 254 + 8)
    f = bytes(frame(bytes(255)))  # LEN 256: extended, LENM 01 LENL 00 LCS FF
    eq(f[:8], b"\x00\x00\xff\xff\xff\x01\x00\xff")
    eq(f[8], 0xD4)
    eq(f[-2:], b"\x2c\x00", "DCS = -D4")
    eq(len(f), 255 + 11)


def test_round_trips_of_every_length_from_0_to_300():
    rand = _Rand(4)
    for n in range(301):
        data = rand.data(n)
        sent = bytes(frame(data, TFI_PN532))
        eq(sent, _reference(TFI_PN532, data), "frame of %d bytes" % n)
        eq(_events(FrameReader(301), sent), [bytes([TFI_PN532]) + data], "read back %d" % n)
    # the simulator's side reads the host's frames
    eq(_events(FrameReader(tfi=TFI_HOST), GFV_COMMAND), [b"\xd4\x02"])


def test_frame_into_refuses_a_buffer_too_small():
    e = raises(FrameError, frame_into, bytearray(10), b"\x4a\x01\x00")
    eq(e.code, "pn532.length")


def test_pieces_of_every_size():
    rand = _Rand(7)
    long_answer = rand.data(280)
    stream = (ACK_FRAME + GFV_ANSWER + b"\x00\x00" + _reference(TFI_PN532, long_answer) + ERROR_FRAME
              + _reference(TFI_PN532, b"") + NACK_FRAME)
    want = [ACK, b"\xd5\x03\x32\x01\x06\x07", b"\xd5" + long_answer, ERROR, b"\xd5", NACK]
    for piece in range(1, len(stream) + 1):
        r = FrameReader(300)
        eq(_events(r, stream, piece), want, "pieces of %d" % piece)
        eq(r.skipped, 0)


def test_ack_and_answer_in_one_read():
    r = FrameReader()
    r.feed(ACK_FRAME + GFV_ANSWER)
    eq(r.next(), ACK)
    eq(r.next(), INFO)
    eq((r.length, bytes(r.info())), (6, b"\xd5\x03\x32\x01\x06\x07"))
    eq(r.next(), NONE)


def test_long_preambles_and_garbage_are_skipped_and_counted():
    r = FrameReader()
    stream = b"\x00" * 7 + GFV_ANSWER + b"\x55\xff\x12" + ACK_FRAME + b"\x00\x00\x00\x00\xff\xff\x00\x00"
    eq(_events(r, stream), [b"\xd5\x03\x32\x01\x06\x07", ACK, NACK])
    eq(r.skipped, 3)


def test_a_chance_start_code_in_garbage_does_not_hide_the_frame_after_it():
    # 00 FF 00 00 looks like a frame of LEN 0; the real start code follows at once
    eq(_events(FrameReader(), b"\x00\xff\x00\x00" + GFV_ANSWER), ["pn532.length", b"\xd5\x03\x32\x01\x06\x07"])
    # a false start whose LEN swallows the real frame: its DCS fails, the real frame is found inside
    eq(_events(FrameReader(), b"\x00\xff\x10\xf0\x01" + GFV_ANSWER + ACK_FRAME),
       ["pn532.checksum", b"\xd5\x03\x32\x01\x06\x07", ACK])


def test_bad_checksums_then_a_good_frame():
    bad_lcs = bytearray(GFV_ANSWER)
    bad_lcs[4] ^= 0x01
    bad_dcs = bytearray(GFV_ANSWER)
    bad_dcs[-2] ^= 0x80
    bad_data = bytearray(GFV_ANSWER)
    bad_data[7] ^= 0x04  # a flipped bit in the data: the DCS no longer matches
    ext = bytearray(_reference(TFI_PN532, bytes(300)))
    ext[7] ^= 0x01  # extended LCS
    for bad in (bad_lcs, bad_dcs, bad_data, ext):
        for piece in (0, 1, 3):
            eq(_events(FrameReader(310), bytes(bad) + GFV_ANSWER, piece),
               ["pn532.checksum", b"\xd5\x03\x32\x01\x06\x07"], bytes(bad[:8]))


def test_a_length_over_the_buffer_is_refused_and_the_next_frame_read():
    r = FrameReader(8)
    eq(_events(r, _reference(TFI_PN532, bytes(20)) + GFV_ANSWER), ["pn532.length", b"\xd5\x03\x32\x01\x06\x07"])
    eq(r.next(), NONE)


def test_a_frame_in_the_wrong_direction_is_named():
    eq(_events(FrameReader(), GFV_COMMAND + GFV_ANSWER), ["pn532.tfi", b"\xd5\x03\x32\x01\x06\x07"])
    e = raises(FrameError, _first_error, GFV_COMMAND)
    eq((e.code, e.detail), ("pn532.tfi", "TFI D4"))


def _first_error(stream):
    r = FrameReader()
    r.feed(stream)
    while r.next() != NONE:
        pass


def test_a_truncated_frame_followed_by_a_new_one():
    truncated = _reference(TFI_PN532, b"\x4b\x01\x01\x00\x44\x00\x07\x04\x11\x22")[:9]
    # the rest never comes; the next answer follows straight away: found by hunting again
    eq(_events(FrameReader(), truncated + GFV_ANSWER + ACK_FRAME),
       ["pn532.checksum", b"\xd5\x03\x32\x01\x06\x07", ACK])
    # or the transport timed out and reset the reader in between
    r = FrameReader()
    eq(_events(r, truncated), [])
    r.reset()
    eq(_events(r, GFV_ANSWER), [b"\xd5\x03\x32\x01\x06\x07"])
    # a truncated extended answer swallowing two short frames: both are found again
    long_trunc = _reference(TFI_PN532, bytes(200))[:50]
    eq(_events(FrameReader(), long_trunc + ACK_FRAME + GFV_ANSWER + b"\x00" * 200 + ACK_FRAME),
       ["pn532.checksum", ACK, b"\xd5\x03\x32\x01\x06\x07", ACK])


def test_frames_come_through_random_garbage():
    rand = _Rand(11)
    # taken first, in one piece: a bytearray grown frame by frame needs ever larger blocks
    # of a heap that the frames kept in `want` have cut up
    stream, n = bytearray(24 * (5 + 5 + 300 + 10)), 0
    want = []
    for i in range(24):
        garbage = bytes(1 + rand.below(255) for _ in range(rand.below(6)))
        if i % 2:
            # a false start code and a random header: it may claim the real frame as its body
            garbage += b"\x00\xff" + rand.data(1 + rand.below(3))
        data = rand.data(rand.below(290))
        for piece in (garbage, _reference(TFI_PN532, data)):
            stream[n:n + len(piece)] = piece
            n += len(piece)
        want.append(b"\xd5" + data)
    got = _events(FrameReader(300), memoryview(stream)[:n], 17)
    eq([g for g in got if isinstance(g, bytes)], want)
    errors = [g for g in got if isinstance(g, str)]
    assert len(errors) >= 6, errors  # the false starts were refused, not silently taken


def test_feeding_before_the_bytes_are_read_is_refused():
    r = FrameReader()
    r.feed(ACK_FRAME + ACK_FRAME)
    eq(r.next(), ACK)
    raises(ValueError, r.feed, ACK_FRAME)
    eq(r.next(), ACK)
    eq(r.next(), NONE)
    r.feed(ACK_FRAME)
    eq(r.next(), ACK)


def test_feed_takes_a_read_buffer_and_its_count():
    buf = bytearray(64)
    buf[:len(GFV_ANSWER)] = GFV_ANSWER
    for i in range(len(GFV_ANSWER), 64):
        buf[i] = 0xAA  # stale bytes of an earlier read, past the count
    r = FrameReader()
    r.feed(buf, len(GFV_ANSWER))
    eq(r.next(), INFO)
    eq(r.next(), NONE)
    eq(r.skipped, 0)


def test_reading_a_frame_allocates_nothing():
    long_answer = _Rand(3).data(262)
    stream = bytearray(b"\x00\x00" + ACK_FRAME + GFV_ANSWER + _reference(TFI_PN532, long_answer) + ERROR_FRAME)
    chunk = bytearray(32)
    r = FrameReader()
    counts = [0, 0, 0, 0, 0]
    sums = [0]

    def run():
        # the driver's loop: copy a read into the chunk buffer, feed it with its count
        at = 0
        while at < len(stream):
            n = 0
            while n < len(chunk) and at < len(stream):
                chunk[n] = stream[at]
                n += 1
                at += 1
            r.feed(chunk, n)
            while True:
                kind = r.next()
                if kind == NONE:
                    break
                counts[kind] += 1
                if kind == INFO:
                    total = 0
                    buf = r.buf
                    for i in range(r.start, r.start + r.length):
                        total += buf[i]
                    sums[0] += total

    run()  # warm-up
    for i in range(5):
        counts[i] = 0
    sums[0] = 0
    without_allocating(run)
    eq(counts, [0, 1, 0, 1, 2])
    eq(sums[0], sum(b"\xd5\x03\x32\x01\x06\x07") + 0xD5 + sum(long_answer))
