"""tests/ports.py: a port handed to one process is never handed to another while it lives, and
never lies in the range the kernel gives client connections."""

import socket
import subprocess
import sys

from tests import ports
from tests.harness import ROOT


def test_a_port_is_outside_the_ephemeral_range() -> None:
    port = ports.free_port()
    assert port not in ports._ephemeral_range()


def test_a_port_held_by_another_process_is_not_handed_out() -> None:
    script = "import sys; from tests.ports import free_port; print(free_port(), flush=True); sys.stdin.read()"
    with subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        taken = int(holder.stdout.readline())
        assert not ports._claim(taken)
        holder.stdin.close()
    # The claim ends with its process.
    assert ports._claim(taken)


def test_a_port_with_a_listener_is_not_handed_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not ports._claim(listener.getsockname()[1])
