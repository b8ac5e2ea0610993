"""Run a command in a private network namespace and relay its loopback TCP port to a Unix socket.

    unshare --net [--user --map-root-user] python netns_relay.py SOCKET PORT -- COMMAND...

Renode's GDB server listens on every interface (IPAddress.Any) and, through
`qRcmd`, runs any Monitor command, Python included, for whoever connects. In a
fresh network namespace the only interface is loopback, so nothing outside
this machine, and nothing on it outside the namespace, can reach that port.
The session reaches it through SOCKET, a Unix socket in its private directory:
Unix sockets are files, so they cross network namespaces. Started by path, not
as a module, so it imports nothing of simrun. Exits with COMMAND's status;
COMMAND inherits stdin (Renode quits at its end) and the process group.
"""
from __future__ import annotations

import fcntl
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def interfaces() -> list[str]:
    with open("/proc/net/dev") as f:
        return [line.split(":")[0].strip() for line in f.readlines()[2:]]


def pump(src: socket.socket, dst: socket.socket) -> None:
    quickack = src.family == socket.AF_INET and hasattr(socket, "TCP_QUICKACK")
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if quickack:   # ACK at once, so a sender with Nagle on (Renode's) is not held ~40 ms
                src.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def relay(client: socket.socket, port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            upstream = socket.create_connection(("127.0.0.1", port))
            # GDB is ping-pong of small packets: Nagle plus delayed ACKs would stall each by ~40 ms.
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            break
        except OSError:
            if time.monotonic() > deadline:
                client.close()
                return
            time.sleep(0.05)
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
    pump(client, upstream)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: netns_relay.py SOCKET PORT -- COMMAND...", file=sys.stderr)
        return 2
    path, port, command = argv[0], int(argv[1]), argv[3:]
    loopback_up()
    others = [i for i in interfaces() if i != "lo"]
    if others:   # unshare did not give a fresh namespace: refuse rather than expose the port
        print(f"simrun: network namespace is not private (interfaces {others}); not starting "
              f"{command[0]}", file=sys.stderr, flush=True)
        return 3
    parent = os.getppid()
    child = subprocess.Popen(command)          # stdin, stdout and process group inherited
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)                      # the socket: owner only
    try:
        server.bind(path)
    finally:
        os.umask(old)
    server.listen(4)
    while True:
        ready, _, _ = select.select([server], [], [], 0.2)
        if ready:
            client, _ = server.accept()
            threading.Thread(target=relay, args=(client, port), daemon=True).start()
        code = child.poll()
        if code is not None:
            return code
        if os.getppid() != parent:             # our session died: take the whole group along
            os.killpg(os.getpgrp(), signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
