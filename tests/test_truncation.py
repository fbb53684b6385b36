import random
import re

import pytest

from harness.generation.truncation import MTPB_STOP, StopSequenceDetector, truncate_at_stops, truncate_mtpb

CASES = [
    # The original's own test.
    ("\nif len_a > len_b:\n    result = a\nelse:\n    result = b\n\n\n\n#", "\nif len_a > len_b:\n    result = a\nelse:\n    result = b"),
    ("x = 1\nprint(x)\nprint(y)\n", "x = 1\nprint(x)\n"),
    ("def f():\n    pass\ndef g():\n    pass\n", "def f():\n    pass\n"),
    ("x = 1\n# next turn\ny = 2", "x = 1\n"),
    ("# starts with a comment\nx = 1", ""),
    ("x = 1<|endoftext|>garbage", "x = 1"),
    ("x = 1\n'''docstring'''", "x = 1\n"),
    ('x = 1\n"""doc"""', "x = 1\n"),
    ("x = 1\n\n\ny = 2", "x = 1"),
    ("x = 1\n    # indented comment stays\ny = 2", "x = 1\n    # indented comment stays\ny = 2"),
    ("a = 'print'\nprint(a)\n", "a = 'print'\nprint(a)\n"),
    ("print(1)\nx = 2\nprint(2)\n# c", "print(1)\nx = 2\n"),
    ("def a():\n    print(1)\n    print(2)\n", "def a():\n    print(1)\n    print(2)\n"),
    ("default = 3\ndef f(): pass\n", "default = 3\n"),
    ("y = 1\n\n", "y = 1\n\n"),
    ("", ""),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_truncate_mtpb_battery(text, expected):
    assert truncate_mtpb(text) == expected


def _feed_until_stop(detector, text, chunk):
    for i in range(0, len(text), chunk):
        if detector.feed(text[i:i + chunk]):
            return i + chunk
    return None


@pytest.mark.parametrize("seed", range(200))
def test_detector_stops_only_when_truncation_is_final(seed):
    rng = random.Random(seed)
    pieces = ["x = 1", "\n", "print(x)", "def f():", "    return 2", "#", "'''", "<|endoftext|>", "\n\n", "pass",
              "prin", "t(3)", "de", "f g", " ", "'"]
    text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
    stopped = _feed_until_stop(MTPB_STOP.detector(), text, rng.randint(1, 4))
    if stopped is None:
        assert truncate_mtpb(text) == text
    else:
        seen = text[:stopped]
        # Whatever comes after the stop point cannot change the truncated result.
        assert truncate_mtpb(seen) == truncate_mtpb(text)
        assert truncate_mtpb(seen) != seen


def test_code_stop_sequences():
    text = "    return x\n\ndef other():\n    pass"
    assert truncate_at_stops(text, ("\ndef", "\nclass")) == "    return x\n"
    detector = StopSequenceDetector(("\ndef",))
    assert not detector.feed("    return x\n")
    assert detector.feed("de") is False
    assert detector.feed("f other") is True


def test_detector_sees_only_the_tail():
    detector = MTPB_STOP.detector()
    for _ in range(10_000):
        assert not detector.feed("x = 1\n")
    assert len(detector.line) == 0 and len(detector.tail) < 13
    assert re.match("^#", "#") and detector.feed("#")
