"""Sealed jobs (issue 30): the worker's network namespace carries nothing from one job to the next.

Each server has a network namespace of its own (bubblewrap's ``--unshare-net``, with a loopback device) that
outlives its jobs. Traffic a program sent over loopback moved the namespace's counters (``/proc/net/snmp``:
datagrams sent, packets received) and left TCP connections in TIME_WAIT for a minute (``/proc/net/tcp``, with the
ports the program chose): a learner kept its count there. Programs now get no IPv4 or IPv6 socket at all (the
syscall filter); Unix sockets, which ``asyncio`` and ``socketpair`` use, still work.
"""

from __future__ import annotations

import pytest

from sandbox.pool import Job, Limits, SandboxPool
from test_sandbox_hostile import require_full_isolation

LIMITS = Limits(wall_seconds=4, cpu_seconds=3, memory_mb=1024, processes=32, output_bytes=200_000)
CHECK = "def check(candidate):\n    assert candidate(0) == 3\n"

# Reads the count the earlier samples left in the namespace's UDP counter, sends one datagram to 127.0.0.1,
# and answers the count's next value: it passes on its third sample if the counter carries over.
UDP_LEARNER = """
import socket
lines = open("/proc/net/snmp").read().splitlines()
udp = [dict(zip(a.split()[1:], b.split()[1:])) for a, b in zip(lines[::2], lines[1::2]) if a.startswith("Udp:")][0]
n = int(udp["OutDatagrams"])
print("found", n)
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))

def double(x):
    return n + 1
"""

# Keeps its count in the local port of a TCP connection it closes first (so that the connection waits in
# TIME_WAIT, in /proc/net/tcp, after the program has ended): a value of its choice, not just a counter.
TCP_LEARNER = """
import socket
BASE = 40000
found = [int(line.split()[1].split(":")[1], 16) - BASE for line in open("/proc/net/tcp").read().splitlines()[1:]
         if line.split()[3] == "06"]  # TIME_WAIT
n = max([v for v in found if 0 <= v < 100] + [0])
print("found", n)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
client = socket.socket()
client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
client.bind(("127.0.0.1", BASE + n + 1))
client.connect(listener.getsockname())
server, _ = listener.accept()
client.close()  # the side that closes first waits in TIME_WAIT
server.close()

def double(x):
    return n + 1
"""


@pytest.mark.parametrize("learner", [UDP_LEARNER, TCP_LEARNER], ids=["udp_counter", "tcp_time_wait"])
def test_a_network_learner_on_one_worker_stays_at_zero(learner):
    require_full_isolation()
    job = Job(program=learner, mode="assert", limits=LIMITS, test=CHECK, entry_point="double")
    with SandboxPool(workers=1, preload=()) as pool:
        results = [pool.run_one(job) for _ in range(4)]
    seen = [(r.passed, r.status, r.stdout) for r in results]
    assert results[0].stdout == "found 0\n" and not results[0].passed, results[0]
    assert seen == [seen[0]] * 4, seen


NETWORK_USE = """
import asyncio, socket
def refused(family):
    try:
        socket.socket(family, socket.SOCK_DGRAM)
    except PermissionError:
        return True
    return False
print(refused(socket.AF_INET), refused(socket.AF_INET6))
left, right = socket.socketpair()
left.sendall(b"unix")
print(right.recv(4).decode())
async def main():
    await asyncio.sleep(0)
    return "asyncio"
print(asyncio.run(main()))
"""


def test_programs_get_no_ip_socket_and_keep_unix_sockets():
    require_full_isolation()
    with SandboxPool(workers=1, preload=()) as pool:
        result = pool.run_one(Job(program=NETWORK_USE, mode="print_value", limits=LIMITS, expected="'asyncio'"))
    assert result.stdout == "True True\nunix\nasyncio\n", result
