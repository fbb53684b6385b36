"""Plain data: the only thing that crosses from the program's process to the side that decides.

In: a value (``encode_value``), or what a process that may be hostile sent (``decode_value``). Out: the
value as JSON-able plain data, or the value rebuilt from it. The encoder runs next to the program (which
may have replaced anything in its process), so nothing it produces is trusted: the decoder accepts only
the forms below, bounds what it builds, and never runs code of the program.
"""

import sys

MIB = 1024 * 1024
DECODED_ARRAY_BYTES = 64 * MIB  # the largest array a reported value may decode into
# Arguments whose changes by the program's function are sent back and made to the tests' objects.
MUTABLE = (list, dict, set)


class Unencodable(Exception):
    """A value that is not plain data (e.g. an object with its own ``__eq__``)."""


_BIG_INT = 1 << 63
_MAX_ITEMS = 10000000
_ITERATORS = ("generator", "map", "filter", "zip", "enumerate", "reversed", "list_iterator", "tuple_iterator",
              "range_iterator", "str_iterator", "dict_keyiterator", "dict_valueiterator", "dict_itemiterator",
              "set_iterator")


def _base_value(value, base):
    """The plain value under an instance of a subclass of a plain type, read through the base type's own
    slots, so that the subclass's overrides (``__eq__``, ``__iter__``, ``__str__``...) are never used."""
    if base is int:
        return int.__int__(value)
    if base is float:
        return float.__float__(value)
    if base is str:
        return str.__str__(value)
    if base is bytes:
        return bytes(memoryview(value))
    if base is complex:
        return complex(complex.real.__get__(value), complex.imag.__get__(value))
    if base is dict:
        return dict(list(dict.items(value)))
    return base(list(base.__iter__(value)))


def encode_value(value, exact=False, depth=0):
    """``value`` as JSON-able plain data. ``exact``: subclasses of plain types are refused (the strict
    scorer compares types); otherwise they are encoded as their base type's value."""
    if depth > 200:
        raise Unencodable("a value nested more than 200 levels deep")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -_BIG_INT <= value < _BIG_INT else {"int": hex(value)}
    if kind is float:
        return value if value - value == 0.0 else {"float": repr(value)}  # nan and infinities tagged
    depth += 1
    if kind is list:
        return [encode_value(item, exact, depth) for item in value]
    if kind is tuple or kind is set or kind is frozenset:
        return {kind.__name__: [encode_value(item, exact, depth) for item in value]}
    if kind is dict:
        return {"dict": [[encode_value(k, exact, depth), encode_value(v, exact, depth)] for k, v in value.items()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    if kind is complex:
        return {"complex": [encode_value(value.real), encode_value(value.imag)]}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            array = numpy.asarray(value)  # an ndarray subclass is read as a plain array
            if array.dtype.kind not in "biufcUSO":
                raise Unencodable("a numpy array of dtype %s" % array.dtype)
            return {"ndarray": [array.dtype.str, list(array.shape),
                                encode_value(numpy.ndarray.tolist(array), exact, depth)]}
        if isinstance(value, numpy.generic):
            if value.dtype.kind not in "biufcUS":
                raise Unencodable("a numpy value of dtype %s" % value.dtype)
            return {"numpy": [value.dtype.str, encode_value(numpy.generic.item(value), exact, depth)]}
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.Series):
        return {"series": [encode_value(value.to_numpy(), exact, depth), encode_value(list(value.index), exact, depth),
                           encode_value(value.name, exact, depth)]}
    if kind is range:
        return {"range": [value.start, value.stop, value.step]}
    if kind is Handle:  # the tests pass back an object the program made
        return {"handle": object.__getattribute__(value, "_number")}
    if kind.__name__ in _ITERATORS and _type_name(kind)[0] == "builtins":
        return _encode_iterator(value, exact, depth)
    if not exact:
        for base in (int, float, str, bytes, complex, list, tuple, dict, set, frozenset):
            if isinstance(value, base):
                return encode_value(_base_value(value, base), exact, depth)
    raise Unencodable("a value of type %s.%s" % _type_name(kind))


def _encode_iterator(value, exact, depth):
    """A built-in iterator or generator, drained into its items (a rare value: kept out of ``encode_value``,
    which every value crossing the channel goes through)."""
    items = []
    for item in value:
        items.append(encode_value(item, exact, depth))
        if len(items) > _MAX_ITEMS:
            raise Unencodable("an iterator of more than %d items" % _MAX_ITEMS)
    return {"iterator": items}


def _type_name(kind):
    """A class's module and qualified name, through ``type``'s own descriptors (a metaclass may override
    them; a class made by ``type()`` where ``__name__`` is undefined, inside ``exec``, has no module)."""
    try:
        module = type.__dict__["__module__"].__get__(kind)
    except AttributeError:
        module = None
    return (module if type(module) is str else "?"), type.__dict__["__qualname__"].__get__(kind)


def decode_value(data, depth=0, handles=None):
    """The value ``encode_value`` encoded; ``ValueError`` for anything else. ``handles``: in the program's
    process, the objects the tests hold handles to (``{"handle": n}``)."""
    if depth > 210:
        raise ValueError("nested too deeply")
    kind = type(data)
    if data is None or kind is bool or kind is int or kind is float or kind is str:
        return data
    depth += 1
    if kind is list:
        return [decode_value(item, depth, handles) for item in data]
    if kind is not dict or len(data) != 1:
        raise ValueError("not an encoded value")
    (tag, body), = data.items()
    if tag == "int" and type(body) is str:
        return int(body, 16)
    if tag == "float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "handle" and handles is not None and type(body) is int and 0 <= body < len(handles):
        return handles[body]
    if tag == "bytes" and type(body) is str:
        return bytes.fromhex(body)
    if type(body) is not list:
        raise ValueError("not an encoded value")
    if tag == "tuple":
        return tuple(decode_value(item, depth, handles) for item in body)
    if tag == "set":
        return set(decode_value(item, depth, handles) for item in body)
    if tag == "frozenset":
        return frozenset(decode_value(item, depth, handles) for item in body)
    if tag == "dict":
        return dict((decode_value(k, depth, handles), decode_value(v, depth, handles)) for k, v in body)
    if tag == "complex" and len(body) == 2:
        return complex(decode_value(body[0], depth, handles), decode_value(body[1], depth, handles))
    if tag == "range" and len(body) == 3 and all(type(x) is int for x in body):
        return range(*body)
    if tag == "iterator":
        return iter([decode_value(item, depth, handles) for item in body])
    if tag in ("ndarray", "numpy", "series"):
        return _decode_numpy(tag, body, depth, handles)
    raise ValueError("not an encoded value")


def _decode_numpy(tag, body, depth, handles):
    """An array, a numpy scalar or a pandas Series, read back without running anything of the program."""
    import numpy

    if tag == "ndarray" and len(body) == 3 and type(body[0]) is str and type(body[1]) is list:
        dtype = numpy.dtype(body[0])
        shape = [int(n) for n in body[1]]
        count = 1
        for n in shape:
            count *= max(n, 0)
        # The report is at most 1 MiB, but a dtype names its own item size ("<U100000000"): bound the
        # array the harness would build, whatever the program claims.
        if dtype.kind not in "biufcUSO" or dtype.itemsize * count > DECODED_ARRAY_BYTES:
            raise ValueError("dtype")
        return numpy.array(decode_value(body[2], depth, handles), dtype=dtype).reshape(shape)
    if tag == "numpy" and len(body) == 2 and type(body[0]) is str:
        dtype = numpy.dtype(body[0])
        if dtype.kind not in "biufcUS" or dtype.itemsize > DECODED_ARRAY_BYTES:
            raise ValueError("dtype")
        return dtype.type(decode_value(body[1], depth, handles))
    if tag == "series" and len(body) == 3:
        import pandas

        return pandas.Series(decode_value(body[0], depth, handles), index=decode_value(body[1], depth, handles),
                             name=decode_value(body[2], depth, handles))
    raise ValueError("not an encoded value")


class Handle:
    """The tests' view of an object the program's class made: methods and attributes go through the
    program's process; comparing or hashing the handle itself is by identity (the program's ``__eq__``
    never runs here)."""

    def __init__(self, number, side):
        object.__setattr__(self, "_number", number)
        object.__setattr__(self, "_side", side)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._side.get(self._number, name)

    def __setattr__(self, name, value):
        self._side.set(self._number, name, value)

    def __repr__(self):
        return "<object %d of the program>" % self._number
