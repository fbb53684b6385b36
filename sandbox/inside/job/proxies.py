"""The tests' side of the channel: what the tests call instead of the program's functions.

In: the tests' calls (a proxy per function of the program, a handle per object of its classes). Out:
requests to the program's process as plain data; its replies decoded (``sandbox.inside.wire.codec``) into return
values, the program's changes to mutable arguments, or a rebuilt exception. A reply that is malformed, or
a process that has gone, ends the tests (``Fatal``, which no ``except Exception`` in the tests catches).
"""

import sys

from sandbox.inside.wire.codec import MUTABLE, Handle, Unencodable, decode_value, encode_value
from sandbox.inside.wire.exception_identity import rebuilt


class Fatal(BaseException):
    """Ends the tests whatever they catch: the program's process is gone, or a value cannot cross."""


class Proxy:
    """What the tests call instead of the program's function: arguments go to the program's process as
    plain data; its return value (or its exception's type and message) comes back."""

    def __init__(self, name, caller):
        self.__name__ = name
        self._caller = caller

    def __call__(self, *args, **kwargs):
        return self._caller(self.__name__, args, kwargs)

    def __repr__(self):
        return "<candidate %s>" % self.__name__


BATCH_BYTES = 16384  # a batch of planned calls stays well under a pipe's buffer: sending it never blocks


RETURNED_KEPT = 16  # the latest values the program returned, with the tests' line that called for each


class TestSide:
    def __init__(self, link):
        self.link = link
        self.fatal = None
        self.returned = []  # [(line of the tests, value)]: what a failed check says the program returned
        self._plan = []  # (request, its JSON) of the calls the tests will make (``sandbox.inside.job.plan``)
        self._next = 0  # the first call of the plan not yet sent
        self._batch = []  # the requests of the batch the program's process is answering
        self._answered = 0  # how many of its replies the tests have read

    def expect(self, name, calls):
        """The calls of ``name`` the tests will make next, in order: sent ahead in batches, which the
        program's process answers one after the other (stopping at one that raises), each reply read when
        the tests make that call. A call that is not the plan's next ends the plan: the rest of the batch's
        replies are read and dropped, and calls go one at a time."""
        for args, kwargs in calls:
            try:
                request = self._request(name, args, kwargs)
            except Unencodable:
                break
            self._plan.append((request, self.link.dumps(request)))

    def fail(self, reason, gone=False):
        if self.fatal is None:
            self.fatal = (reason, gone)
        raise Fatal(reason)

    def send_ahead(self):
        """Send the plan's first batch now, before the program has run, if it fits in the (empty) pipe: a
        program that never reads it must not leave the tests blocked on the write."""
        if self._plan and not self._batch and len(self._plan[0][1]) < BATCH_BYTES:
            self._send_batch()

    @staticmethod
    def _request(name, args, kwargs):
        return {"call": name, "args": [encode_value(a) for a in args],
                "kwargs": dict((str(k), encode_value(v)) for k, v in kwargs.items())}

    def call(self, name, args, kwargs, on=None):
        try:
            request = self._request(name, args, kwargs)
        except Unencodable as exc:
            self.fail("the tests pass %s to the candidate, which cannot cross to its process" % exc)
        if on is not None:
            request["on"] = on
        reply = self._exchange(request)
        try:
            if "handle" in reply and type(reply["handle"]) is int:
                return self._returning(Handle(reply["handle"], self))
            if "value" in reply:
                value = decode_value(reply["value"])
                for sent, final in zip(args, reply.get("args") or ()):
                    if final is not None and type(sent) in MUTABLE:
                        _update_in_place(sent, decode_value(final))
                return self._returning(value)
            if "raised" in reply:
                raised = _rebuilt_exception(reply["raised"])
            elif "unencodable" in reply:
                self.fail(str(reply["unencodable"]))
            else:
                self.fail("the program ended during a call: %s" % str(reply.get("fatal"))[:300])
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            self.fail("the program's process sent a malformed reply")
        raise raised

    def _returning(self, value):
        """``value``, noted with the line of the tests that called for it (the innermost frame of the tests'
        own code: a call may come through a lambda or a helper)."""
        frame = sys._getframe(2)
        for _ in range(8):
            if frame is None or frame.f_code.co_filename == "<tests>":
                break
            frame = frame.f_back
        if frame is not None and frame.f_code.co_filename == "<tests>":
            if len(self.returned) == RETURNED_KEPT:
                del self.returned[0]
            self.returned.append((frame.f_lineno, value))
        return value

    def get(self, on, name):
        """An attribute of an object the program made: a method (called through the program's process),
        another such object, or plain data."""
        reply = self._exchange({"get": name, "on": on})
        if reply.get("method") is True:
            return lambda *args, **kwargs: self.call(name, args, kwargs, on)
        if "handle" in reply and type(reply["handle"]) is int:
            return Handle(reply["handle"], self)
        if "raised" in reply:
            raise _rebuilt_exception(reply["raised"])
        if "value" not in reply:
            self.fail(str(reply.get("unencodable") or "the program's process sent a malformed reply"))
        try:
            return decode_value(reply["value"])
        except (ValueError, TypeError, KeyError):
            self.fail("the program's process sent a malformed reply")

    def set(self, on, name, value):
        try:
            request = {"set": name, "on": on, "value": encode_value(value)}
        except Unencodable as exc:
            self.fail("the tests set an attribute to %s, which cannot cross to the program's process" % exc)
        reply = self._exchange(request)
        if "raised" in reply:
            raise _rebuilt_exception(reply["raised"])

    def _exchange(self, request):
        if self.fatal is not None:
            raise Fatal(self.fatal[0])
        if self._plan:
            reply = self._planned_reply(request)
            if reply is not None:
                return reply
        self._send(self.link.dumps(request))
        return self._receive()

    def _send(self, text):
        try:
            self.link.send_text(text)
        except OSError:
            self.fail("the program's process ended before the tests finished", gone=True)

    def _receive(self):
        reply = self.link.recv()
        if type(reply) is not dict:
            self.fail("the program's process ended before the tests finished", gone=True)
        return reply

    def _planned_reply(self, request):
        """The reply to ``request`` if it is the plan's next call (a new batch goes out when the last one's
        replies are used up); None when it is not, and the plan has been dropped."""
        if self._answered == len(self._batch):
            if self._next == len(self._plan) or self._plan[self._next][0] != request:
                self._plan = []
                return None
            self._send_batch()
        if self._batch[self._answered] != request:
            self._end_batch()
            self._plan = []
            return None
        self._answered += 1
        reply = self._receive()
        if self._answered == len(self._batch) or "value" not in reply and "handle" not in reply:
            self._end_batch()  # the program's process stops a batch at a call that did not return
        return reply

    def _send_batch(self):
        texts, size = [], 0
        while self._next < len(self._plan) and (not texts or size + len(self._plan[self._next][1]) < BATCH_BYTES):
            request, text = self._plan[self._next]
            self._batch.append(request)
            texts.append(text)
            size += len(text)
            self._next += 1
        self._send('{"batch": [%s]}' % ", ".join(texts))

    def _end_batch(self):
        """Read up to the batch's end mark (``{"done": true}``), dropping replies no call asked for."""
        while self._receive().get("done") is not True:
            pass
        self._batch, self._answered = [], 0


def _update_in_place(sent, final):
    """The program's changes to a list, dict or set argument, made to the tests' object."""
    if type(final) is not type(sent):
        return
    if type(sent) is list:
        sent[:] = final
    else:
        sent.clear()
        sent.update(final)


def _rebuilt_exception(raised):
    """The program's exception, with its real identity (``sandbox.inside.wire.exception_identity``); a malformed one
    is the program's process failing."""
    return rebuilt(str(raised[0]), str(raised[1]), raised[2] if len(raised) > 2 else None)
