"""The channel between the tests' process and the program's process, and the server's exact reads.

In: messages (plain data, see ``sandbox.inside.wire.codec``) and a pair of pipe descriptors. Out: length-prefixed JSON
frames on one pipe, and the messages read back from the other; ``None`` at the end of the stream, on a
malformed frame, or (on the tests' side) once the server says the program's process has gone.
"""

import json
import os
import select

MAX_FRAME = 256 * 1024 * 1024


class Link:
    """Length-prefixed JSON frames over a pair of pipes. It keeps its own references to the JSON functions,
    taken before the program runs, so a program that patches the ``json`` module for its own ends still
    answers the tests."""

    def __init__(self, read_fd, write_fd, control=None, sequence=None):
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._dumps = json.dumps
        self._loads = json.loads
        # The tests' side also watches the server's control pipe: {"gone": sequence} there says the
        # program's process has exited, so no answer will come.
        self._control = control
        self._sequence = sequence

    def dumps(self, message):
        return self._dumps(message)

    def send(self, message):
        self.send_text(self._dumps(message))

    def send_text(self, text):
        """A message already serialised (``dumps``)."""
        data = text.encode()
        data = len(data).to_bytes(4, "big") + data
        while data:
            data = data[os.write(self.write_fd, data):]

    def recv(self):
        """The next message, or None at the end of the stream (or on a malformed frame)."""
        head = self._read(4)
        if head is None:
            return None
        size = int.from_bytes(head, "big")
        if size > MAX_FRAME:
            return None
        body = self._read(size)
        if body is None:
            return None
        try:
            return self._loads(body)
        except ValueError:
            return None

    def _read(self, size):
        if self._control is None:
            return read_exactly(self.read_fd, size)
        chunks, remaining = [], size
        watched = [self.read_fd, self._control.read_fd]
        while remaining:
            ready = select.select(watched, [], [])[0]
            if self.read_fd not in ready:  # what the program wrote before it ended comes first
                notice = self._control.recv()
                if notice is None or notice.get("gone") == self._sequence:
                    return None
                continue
            chunk = _read_chunk(self.read_fd, remaining)
            if chunk is None:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


def read_exactly(fd, size):
    chunks, remaining = [], size
    while remaining:
        chunk = _read_chunk(fd, remaining)
        if chunk is None:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_chunk(fd, remaining):
    """Up to ``remaining`` bytes (1 MiB at most), or None at the end of the stream or on an error."""
    try:
        chunk = os.read(fd, min(remaining, 1 << 20))
    except OSError:
        return None
    return chunk or None
