"""An exception's identity across the channel: what the program raised, as the tests catch it.

In, in the program's process (``lineage``): the exception's class. Out: its MRO as plain data, each class
named by module and qualified name when it is the very class those names reach (a standard library or
installed module's), by qualified name only when it is the program's own (a class of the program named
``ValueError`` reaches nothing of the standard library: it is not the builtin). In, in the tests' process
(``rebuilt``): that lineage, the class's name and the message. Out: an exception whose class is the real
standard-library class where the lineage names one this process has loaded, else a class made here under
the program's name, below the nearest such class of its MRO, so ``except ArithmeticError`` catches
``decimal.InvalidOperation`` and ``except ValueError`` does not catch a look-alike. Nothing the program
sends can make the tests treat its exception as more than the standard class it reaches (which it could
have raised itself).
"""

import sys

_MAX_CLASSES = 64
_MAX_NAME = 300


class CandidateError(Exception):
    """An exception the program raised whose class is not a standard library one."""


def _class_name(cls):
    """``(module, qualname)`` read through ``type``'s own descriptors (a metaclass may override them); the
    module is None when the class has none (``type()`` called where ``__name__`` is undefined)."""
    qualname = type.__dict__["__qualname__"].__get__(cls)
    try:
        module = type.__dict__["__module__"].__get__(cls)
    except AttributeError:
        module = None
    return (module if type(module) is str else None), (qualname if type(qualname) is str else "?")


def _resolve(modules, module, qualname):
    """The object ``module`` + ``qualname`` reach among already loaded ``modules`` (nothing is imported)."""
    found = modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found


def lineage(exc):
    """The program's process: the MRO of ``exc``'s class, each entry ``[module, qualname]``, module None
    for a class that is not what its own names reach."""
    entries = []
    try:
        for cls in type.__dict__["__mro__"].__get__(type(exc))[:_MAX_CLASSES]:
            module, qualname = _class_name(cls)
            real = module is not None and _resolve(sys.modules, module, qualname) is cls
            entries.append([module if real else None, qualname[:_MAX_NAME]])
    except Exception:  # a class the program made odd enough: the tests see only its name
        pass
    return entries


_STANDARD = frozenset(sys.stdlib_module_names) | {"builtins"}
_MADE = {}


def _standard_class(entry):
    """The tests' process's own standard-library exception class an entry names, or None."""
    if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not str or type(entry[1]) is not str:
        return None
    module, qualname = entry
    if module.split(".")[0] not in _STANDARD or len(module) > _MAX_NAME or len(qualname) > _MAX_NAME:
        return None
    cls = _resolve(sys.modules, module, qualname)
    return cls if isinstance(cls, type) and issubclass(cls, Exception) else None


def rebuilt(name, message, entries):
    """The tests' process: the exception to raise in the tests for the program's."""
    classes = [_standard_class(entry) for entry in entries[:_MAX_CLASSES]] if type(entries) is list else []
    exact = classes[0] if classes else None
    if exact is None:
        base = next((cls for cls in classes if cls is not None), Exception)
        exact = _made(name[:_MAX_NAME], base)
    try:
        return exact(message)
    except Exception:  # a class whose constructor wants more (UnicodeDecodeError): the message alone
        try:
            exc = exact.__new__(exact)
            exc.args = (message,)
            return exc
        except Exception:
            return CandidateError("%s: %s" % (name, message))


def _made(name, base):
    """A class named as the program's, below ``base`` and ``CandidateError``: made once per pair."""
    name = name if name.isidentifier() else "ProgramError"
    key = (name, base)
    if key not in _MADE:
        if len(_MADE) > 4096:
            _MADE.clear()
        try:
            _MADE[key] = type(name, (base, CandidateError) if base is not Exception else (CandidateError,),
                              {"__module__": "program"})
        except TypeError:  # a base whose layout cannot be combined: the name, below CandidateError only
            _MADE[key] = type(name, (CandidateError,), {"__module__": "program"})
    return _MADE[key]
