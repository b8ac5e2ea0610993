"""The replica's `python "..."` Monitor command: the two bus copies simrun sends, nothing else.

Renode's Monitor runs any IronPython there (self = the Monitor); simrun sends only the two
statements of simrun/device/emulators/renode_memory.py, which copy a range of the system bus
to or from a file. The replica runs those two against QEMU's memory and answers as Renode
1.16.1 does (seen on the real one): no output on success; a missing file is
`Could not find file "PATH"` under "There was an error executing command ...".
"""
from __future__ import annotations

import os
import re

READ = re.compile(r"import System; System\.IO\.File\.WriteAllBytes\(r'(?P<path>[^']+)', self\.Machine\.SystemBus"
                  r"\.ReadBytes\(System\.UInt64\((?P<address>\d+)\), (?P<length>\d+), True, None\)\)")
WRITE = re.compile(r"import System; self\.Machine\.SystemBus\.WriteBytes\(System\.IO\.File\.ReadAllBytes\("
                   r"r'(?P<path>[^']+)'\), System\.UInt64\((?P<address>\d+)\), True, None\)")
CHUNK = 4096                       # QEMU's GDB stub: 4096-byte packets


class PythonError(Exception):
    pass


def run(code: str, upstream) -> str:
    """Run one of simrun's two statements against QEMU (`upstream`: its GDB client)."""
    m = READ.fullmatch(code)
    if m:
        address, length = int(m["address"]), int(m["length"])
        data = bytearray()
        while len(data) < length:
            n = min(CHUNK // 2 - 16, length - len(data))
            part = upstream.read(address + len(data), n)
            data += part if part is not None else bytes(n)        # onlyMemory: unmapped reads as 0
        with open(m["path"], "wb") as f:
            f.write(data)
        return ""
    m = WRITE.fullmatch(code)
    if m:
        if not os.path.isfile(m["path"]):
            raise PythonError(f'Could not find file "{m["path"]}"')
        with open(m["path"], "rb") as f:
            upstream.write(int(m["address"]), f.read())
        return ""
    raise PythonError("the Renode replica runs only simrun's two bus-copy statements (renode_memory.py)")
