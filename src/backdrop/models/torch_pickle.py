"""A pickle reader that runs no code: plain data, plus only the globals its caller allows."""

from __future__ import annotations

import collections
import io
import pickletools

# Why not `pickle.Unpickler` with a strict `find_class`: it allocates a counted bytes/str before
# reading it (a 12-byte pickle can ask for exabytes), hashes any tuple a pickle builds as a dict
# key (nested shared tuples take 2**depth steps) and recurses; this machine does none of that.


class TorchFormatError(ValueError):
    """The file is not a PyTorch state_dict this reader can load."""


_VALUES = frozenset(
    "INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT STRING BINSTRING SHORT_BINSTRING "
    "UNICODE BINUNICODE SHORT_BINUNICODE BINUNICODE8 BINBYTES SHORT_BINBYTES BINBYTES8".split()
)
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False, "EMPTY_TUPLE": ()}
_KEY_TYPES = (str, int, float, bool, bytes, type(None))  # cheap to hash, whatever their value


def load_pickle(stream: io.BytesIO, allowed: dict | None = None, persistent_load=None):
    """The object of the pickle at `stream`'s position, leaving `stream` just past its STOP.

    Args:
        stream: the pickle, in memory (the counted lengths are checked against what is there).
        allowed: `(module, name) -> object` for each global the pickle may name; the functions
            among them are all that REDUCE may call. None: plain data only.
        persistent_load: what a persistent id (PERSID, BINPERSID) stands for; None refuses them.

    Raises:
        TorchFormatError: the pickle is malformed, names another global, or uses an opcode
            plain data does not need (one line, without the file's name).
    """
    allowed = allowed or {}
    stack: list = []
    marks: list[int] = []
    memo: dict = {}

    def since_mark() -> list:
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def top(*kinds):
        if type(stack[-1]) not in kinds:
            raise TorchFormatError(f"its pickle applies {name} to a {type(stack[-1]).__name__}")
        return stack[-1]

    name = "its start"
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            name = opcode.name
            if name in _VALUES:
                stack.append(arg)
            elif name in _CONSTANTS:
                stack.append(_CONSTANTS[name])
            elif name in ("PROTO", "FRAME"):
                pass
            elif name == "STOP":
                return stack.pop()
            elif name == "MARK":
                marks.append(len(stack))
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                since_mark()
            elif name == "DUP":
                stack.append(stack[-1])
            elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
            elif name in ("TUPLE", "LIST"):
                items = since_mark()
                stack.append(items if name == "LIST" else tuple(items))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                items = tuple(stack.pop() for _ in range(int(name[-1])))[::-1]
                stack.append(items)
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name in ("APPEND", "APPENDS"):
                items = since_mark() if name == "APPENDS" else [stack.pop()]
                top(list).extend(items)
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name in ("DICT", "SETITEM", "SETITEMS"):
                items = [stack.pop(), stack.pop()][::-1] if name == "SETITEM" else since_mark()
                target = {} if name == "DICT" else top(dict, collections.OrderedDict)
                if len(items) % 2 or not all(type(k) in _KEY_TYPES for k in items[::2]):
                    raise TorchFormatError("its pickle has a dict key that is not a str or number")
                target.update(zip(items[::2], items[1::2], strict=True))
                if name == "DICT":
                    stack.append(target)
            elif name in ("GLOBAL", "STACK_GLOBAL"):
                where = tuple(arg.split(" ", 1) if arg else (stack.pop(-2), stack.pop()))
                if not all(type(part) is str for part in where) or where not in allowed:
                    shown = ".".join(p[:40] if type(p) is str else type(p).__name__ for p in where)
                    raise TorchFormatError(
                        f"unexpected {shown} in its pickle: only tensors in dicts are read"
                    )
                stack.append(allowed[where])
            elif name == "REDUCE":
                args, function = stack.pop(), stack.pop()
                if not any(function is f for f in allowed.values() if callable(f)) or (
                    type(args) is not tuple
                ):
                    raise TorchFormatError(f"its pickle calls a {type(function).__name__}")
                try:
                    stack.append(function(*args))
                except TypeError:
                    raise TorchFormatError(
                        f"its pickle calls {function.__name__} with {len(args)} arguments"
                    ) from None
            elif name == "BUILD":
                stack.pop()  # a state_dict's `_metadata` (module versions): not needed
                top(collections.OrderedDict)
            elif name in ("PERSID", "BINPERSID") and persistent_load is not None:
                stack.append(persistent_load(arg if name == "PERSID" else stack.pop()))
            else:
                raise TorchFormatError(f"its pickle uses {name}, which a state_dict never needs")
    except TorchFormatError:
        raise
    except (IndexError, KeyError, ValueError) as error:
        raise TorchFormatError(f"its pickle is malformed at {name} ({error})") from error
    raise TorchFormatError("a pickle ends without STOP")
