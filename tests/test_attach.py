"""Attach mode (`--gdb HOST:PORT`): simrun drives an emulator the user started, loopback only."""
from __future__ import annotations

import re
import socket
import subprocess
import time

import numpy as np
import pytest

from simrun.errors import BadInput, SimrunError
from simrun.device import fixture
from simrun.device.emulators.attach import parse_gdb_address
from simrun.device.session import Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gdb_stop_reply(address: str, timeout: float = 10) -> str:
    """The reply of the GDB server at address to a new client's `?`. QEMU serves one client at
    a time, so an answer says the emulator is alive and its previous client has let go."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=2) as s:
                s.sendall(b"$?#3f")
                reply = b""
                while not re.search(rb"\$([^#]*)#[0-9a-fA-F]{2}", reply):
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("connection closed")
                    reply += chunk
                return re.search(rb"\$([^#]*)#", reply).group(1).decode()
        except OSError as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"no GDB server answering at {address} within {timeout} s: {err}") from None
            time.sleep(0.05)


@pytest.fixture
def users_qemu(qemu, arm_gcc):
    """A QEMU started the way a user's bench would: halted, GDB server on 127.0.0.1:PORT."""
    elf = fixture.build_fixture("cortex-m4")
    port = free_port()
    proc = subprocess.Popen([qemu, "-M", "mps2-an386", "-kernel", str(elf), "-S", "-nographic", "-monitor", "none",
                             "-serial", "none", "-nodefaults", "-gdb", f"tcp:127.0.0.1:{port}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()   # QEMU takes one client at a time
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "QEMU did not open its GDB port"
            time.sleep(0.05)
    yield elf, f"127.0.0.1:{port}", proc
    proc.kill()
    proc.wait()


def test_attach_runs_the_users_emulator_and_leaves_it_running(users_qemu):
    elf, address, proc = users_qemu
    model = fixture.demo_model(seed=4)
    x = np.arange(-32, 32, dtype=np.int8).reshape(1, 64)
    with Session(elf, cpu="cortex-m4", gdb=address, timeout=20) as s:
        s.load_model(model.to_bytes(), raw=True)
        cap = s.invoke([x])
        assert s.emulator_pid is None                       # not ours to stop
        assert s._gdb.dialect.name == "qemu"                # read from its qSupported reply
        with pytest.raises(SimrunError, match="one model per emulator start"):
            s.load_model(model.to_bytes(), raw=True)
    for rec, expected in zip(cap.ops, fixture.reference(model, x), strict=True):
        assert np.array_equal(rec.outputs[0].values, expected)
    # Detached, still the user's: its GDB server takes the next client and says why it is stopped.
    assert re.fullmatch(r"[ST][0-9a-fA-F]{2}.*", gdb_stop_reply(address))
    assert proc.poll() is None


@pytest.mark.parametrize("address", ["192.0.2.1:3333", "example.invalid:3333", "3333", "127.0.0.1:0",
                                     "localhost:http"])
def test_non_loopback_or_malformed_addresses_are_refused(address):
    with pytest.raises(BadInput, match="--gdb"):
        parse_gdb_address(address)


def test_loopback_forms_are_accepted():
    assert parse_gdb_address("127.0.0.1:3333") == ("127.0.0.1", 3333)
    assert parse_gdb_address("[::1]:3333") == ("::1", 3333)


def test_cli_refuses_a_remote_gdb_before_starting_anything(arm_gcc, capsys, tmp_path):
    from simrun.cli import main

    elf = fixture.build_fixture("cortex-m4")
    model = tmp_path / "m.bin"
    model.write_bytes(fixture.demo_model().to_bytes())
    rc = main(["run", str(model), "--cpu", "cortex-m4", "--elf", str(elf), "--raw", "--gdb", "192.0.2.1:3333"])
    assert rc == 2 and "not a loopback address" in capsys.readouterr().err


def test_diff_with_gdb_needs_one_target_and_no_diagnosis(models_dir, capsys):
    from simrun.cli import main

    model = str(models_dir / "person_detect.tflite")
    rc = main(["diff", model, "--cpu", "cortex-m4", "--kernels", "reference,cmsis-nn", "--gdb", "127.0.0.1:3333"])
    assert rc == 2 and "exactly one target backend" in capsys.readouterr().err
    rc = main(["diff", model, "--cpu", "cortex-m4", "--kernels", "reference", "--gdb", "127.0.0.1:3333"])
    assert rc == 2 and "--no-diagnose" in capsys.readouterr().err


def test_attach_to_a_renode_the_bench_started(renode_replica, arm_gcc, tmp_path):
    """A bench's own Renode (here the replica, started as a Robot suite would: its own script, its GDB
    server on 3333), attached with --gdb 127.0.0.1:3333. Runs in a private network namespace of its
    own, so even this Renode's port (every interface) is reachable from nowhere else."""
    import os
    import sys

    from simrun.device.emulators.renode import RELAY, RENODE_DIR, unshare_prefix

    elf = fixture.build_fixture("cortex-m4")
    code = f"""
import subprocess, sys, time
import numpy as np
sys.path.insert(0, {str(RELAY.parent)!r})
import netns_relay
netns_relay.loopback_up()
from simrun.device import fixture
from simrun.device.session import Session
script = "$repl=@{RENODE_DIR}/mps2-an386.repl; $elf=@{elf}; $gdb_port=3333; include @{RENODE_DIR}/mps2-an386.resc"
bench = subprocess.Popen([{str(renode_replica)!r}, "--disable-xwt", "--console", "--plain", "-e", script],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
for line in bench.stdout:
    if "GDB server with all CPUs started" in line:
        break
else:
    sys.exit("the bench's Renode ended before its GDB server started")
model = fixture.demo_model(seed=6)
x = np.arange(64, dtype=np.int8).reshape(1, 64)
with Session({str(elf)!r}, cpu="cortex-m4", gdb="127.0.0.1:3333", timeout=20) as s:
    s.load_model(model.to_bytes(), raw=True)
    cap = s.invoke([x])
    print("dialect", s._gdb.dialect.name, "instructions", s.executed_instructions() > 0)
ok = all(np.array_equal(r.outputs[0].values, e) for r, e in zip(cap.ops, fixture.reference(model, x)))
print("layers", ok, "bench alive", bench.poll() is None)
bench.stdin.close()
bench.wait(10)
"""
    # The bench's Renode cleans `renode-*` folders in its temp dir, as Renode does: give it one of its own.
    env = dict(os.environ, PYTHONPATH=str(RENODE_DIR.parent), TMPDIR=str(tmp_path))
    out = subprocess.run(unshare_prefix() + [sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "dialect renode instructions True" in out.stdout
    assert "layers True bench alive True" in out.stdout      # detached: the bench's Renode lives on
