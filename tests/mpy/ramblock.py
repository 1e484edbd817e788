"""A block device in RAM for littlefs (`vfs.VfsLfs2`), that can lose power on cue.

It implements MicroPython's extended block device interface (readblocks/writeblocks
with an offset, ioctl 6 to erase), which littlefs v2 uses. Every program (writeblocks)
and every erase counts as one block write. `budget` says how many more block writes
may land; the next one raises PowerCut instead: by default before anything of it
lands; with `half=True` after its first half landed, as on real flash when the supply
drops mid-operation. With `fail="eio"` that write and every later one answer -EIO
instead: a flash chip that stopped working while the reader runs on.

    dev = RAMBlockDev(512, 64)
    vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev), "/ram")
    image = bytes(dev.data)               # pristine copy
    dev.budget = 10                       # 10 more block writes land, the 11th is cut
    ...                                   # work until PowerCut
    fresh = RAMBlockDev(512, data=dev.data)  # "reboot": mount what is on the chip now
"""

_EIO = 5


class PowerCut(BaseException):
    """The power went. A BaseException, so firmware code that catches Exception does
    not catch it: the firmware never sees a power cut, it just stops."""


class RAMBlockDev:
    def __init__(self, block_size=512, count=64, data=None):
        self.block_size = block_size
        self.data = bytearray(block_size * count) if data is None else data
        self.writes = 0  # block writes (programs and erases) done so far
        self.budget = None  # block writes allowed before the cut; None: never cut
        self.half = False
        self.fail = "cut"
        self.dead = False  # powered off for good: even reads fail (an old mount after a "reboot")
        self._erased = b"\xff" * block_size

    def _land(self, addr, buf):
        """Write buf at addr, unless this is the write the power cut interrupts."""
        if self.dead:
            return -_EIO  # no exception: GC finalizers get here with the heap locked
        if self.budget is not None and self.budget <= 0:
            if self.fail == "cut":
                if self.half:
                    k = len(buf) // 2
                    self.data[addr:addr + k] = buf[:k]
                raise PowerCut()
            return -_EIO
        if self.budget is not None:
            self.budget -= 1
        self.writes += 1
        self.data[addr:addr + len(buf)] = buf
        return 0

    def readblocks(self, block, buf, offset=0):
        if self.dead:
            return -_EIO
        addr = block * self.block_size + offset
        buf[:] = self.data[addr:addr + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        if offset is None:  # the simple interface: whole blocks, erase implied
            for i in range(len(buf) // self.block_size):
                r = self.ioctl(6, block + i)
                if r:
                    return r
            offset = 0
        return self._land(block * self.block_size + offset, buf)

    def ioctl(self, op, arg):
        if op == 4:  # number of blocks
            return len(self.data) // self.block_size
        if op == 5:  # block size
            return self.block_size
        if op == 6:  # erase: RAM needs none, but it is a write that a cut can hit
            return self._land(arg * self.block_size, self._erased)
        return 0  # init, deinit, sync
