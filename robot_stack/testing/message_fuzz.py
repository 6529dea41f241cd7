"""Random and adversarial ROS 2 messages for fuzz tests (never imported by production code).

:class:`MessageFuzzer` builds messages of any generated message class from its IDL layout
(``SLOT_TYPES``): random messages (:meth:`MessageFuzzer.random`) and mutations of a valid one
(:meth:`MessageFuzzer.mutate`: one to three fields, nested ones and sequence elements included,
set to extreme or malformed values, or sequences cut, emptied or grown). Values are what a
publisher can really send: everything the message's types admit, e.g. integers at their
limits, NaN and infinities, JSON of the wrong shape (or nested a thousand deep) in strings,
random bytes, sequences of the wrong length.
"""
from __future__ import annotations

import copy
import importlib
import json
import math
from typing import Any

import numpy as np
from rosidl_parser import definition as idl

_INT_BITS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64, "uint8": 8, "uint16": 16, "uint32": 32,
             "uint64": 64, "short": 16, "unsigned short": 16, "long": 32, "unsigned long": 32,
             "long long": 64, "unsigned long long": 64}

ADVERSARIAL_STRINGS = (
    "", " ", "[]", "{}", "null", "true", "0", "-1", "nan", "[1, 2]", '"text"', "{not json", "\x00",
    '{"event": "home_done", "t": "soon"}', '{"event": ["home_done"], "t": 1e999}', '{"event": "home_done", "t": null}',
    '{"updates": -5}', '{"updates": 1e400}', '{"updates": "many"}', '{"updates": true}', '{"updates": [1]}',
    '{"format": "torch_state_dict", "policy_spec": [], "network": {}}',
    '{"format": "torch_state_dict", "policy_spec": {"cameras": [{"name": 1}]}, "network": []}',
    '{"format": "torch_state_dict", "policy_spec": {"cameras": [{"name": "a", "height": 100000, "width": 1}]}, "network": {}}',
    '{"format": "torch_state_dict", "policy_spec": {}, "network": {"hidden_dims": [1000000000]}}',
    "[" * 5000, '{"a":' * 3000, "é∑漢🙂", "a" * 10_000,
)


def _message_class(t: idl.NamespacedType):
    return getattr(importlib.import_module(".".join(t.namespaces)), t.name)


class MessageFuzzer:
    """Random/adversarial instances of ROS message classes (see the module docstring)."""

    def __init__(self, rng: np.random.Generator, max_depth: int = 3):
        self.rng = rng
        self.max_depth = max_depth

    # ------------------------------------------------------------------ values
    def _int(self, typename: str) -> int:
        bits = _INT_BITS[typename]
        signed = not typename.startswith("u")
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        picks = [lo, hi, 0, 1, lo + 1, hi - 1, hi // 2 + 1]
        if signed:
            picks.append(-1)
        for p in (2**31, 2**32, 2**53, 2**63):
            if lo <= p <= hi:
                picks.append(p)
        if self.rng.random() < 0.6:
            return int(picks[self.rng.integers(len(picks))])
        return int(self.rng.integers(lo, hi, endpoint=True, dtype=np.uint64 if not signed and bits == 64 else np.int64))

    def _float(self, typename: str) -> float:
        big = 3.4e38 if typename == "float" else 1.7e308
        picks = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-40, big, -big, 1.0, -1.0, 0.5, 1e6, -1e6]
        if self.rng.random() < 0.6:
            return float(picks[self.rng.integers(len(picks))])
        return float(self.rng.normal() * 10.0 ** self.rng.integers(-3, 6))

    def _string(self) -> str:
        r = self.rng.random()
        if r < 0.6:
            return ADVERSARIAL_STRINGS[self.rng.integers(len(ADVERSARIAL_STRINGS))]
        if r < 0.8:
            return json.dumps(self._json(0))
        return "".join(chr(int(c)) for c in self.rng.integers(32, 0x2FF, self.rng.integers(0, 40)))

    def _json(self, depth: int) -> Any:
        k = self.rng.integers(0, 7 if depth < 3 else 4)
        if k == 0:
            return None
        if k == 1:
            return bool(self.rng.integers(2))
        if k == 2:
            return [1e308, -1, 0, 2**70, 0.5][self.rng.integers(5)]
        if k == 3:
            return ["", "home_done", "x" * 100][self.rng.integers(3)]
        if k == 4:
            return [self._json(depth + 1) for _ in range(self.rng.integers(0, 4))]
        keys = ["event", "t", "updates", "detail", "mode", "counters", "format", "policy_spec", "network", "x"]
        return {keys[self.rng.integers(len(keys))]: self._json(depth + 1) for _ in range(self.rng.integers(0, 5))}

    def _basic(self, typename: str) -> Any:
        if typename == "boolean":
            return bool(self.rng.integers(2))
        if typename == "octet":
            return bytes([int(self.rng.integers(256))])
        if typename == "char":
            return chr(int(self.rng.integers(0, 128)))
        if typename in ("float", "double", "long double"):
            return self._float(typename)
        return self._int(typename)

    def _length(self) -> int:
        r = self.rng.random()
        if r < 0.7:
            return int(self.rng.integers(0, 8))
        if r < 0.95:
            return int(self.rng.integers(8, 70))
        return int(self.rng.integers(70, 1200))

    def value(self, t: idl.AbstractType, depth: int = 0) -> Any:
        """A value for a field of IDL type ``t``."""
        if isinstance(t, idl.BasicType):
            return self._basic(t.typename)
        if isinstance(t, idl.AbstractGenericString):
            return self._string()
        if isinstance(t, idl.NamespacedType):
            return self.random(_message_class(t), depth + 1)
        if isinstance(t, (idl.AbstractSequence, idl.Array)):
            vt = t.value_type
            if isinstance(t, idl.Array):
                n = t.size
            elif isinstance(vt, idl.NamespacedType):
                n = 0 if depth >= self.max_depth else int(self.rng.integers(0, 4))
            else:
                n = self._length()
            if isinstance(t, idl.BoundedSequence):
                n = min(n, t.maximum_size)
            if isinstance(vt, idl.BasicType) and vt.typename in ("uint8", "octet"):
                data = self.rng.bytes(n if self.rng.random() < 0.7 else int(self.rng.integers(0, 20_000)))
                if isinstance(t, idl.Array):
                    data = data[:n].ljust(n, b"\0")
                return data if vt.typename == "octet" else list(data)
            return [self.value(vt, depth) for _ in range(n)]
        raise TypeError(f"no fuzz values for IDL type {t!r}")

    # ------------------------------------------------------------------ messages
    def _set(self, msg: Any, name: str, t: idl.AbstractType, depth: int) -> None:
        for _ in range(20):  # a value the field's setter refuses (e.g. 1e308 for float32) is redrawn
            try:
                setattr(msg, name, self.value(t, depth))
                return
            except (AssertionError, TypeError, ValueError, OverflowError):
                continue

    def random(self, msg_type: type, depth: int = 0) -> Any:
        """A message of ``msg_type`` with every field random."""
        msg = msg_type()
        for name, t in zip(msg_type.get_fields_and_field_types(), msg_type.SLOT_TYPES):
            self._set(msg, name, t, depth)
        return msg

    def _leaves(self, msg: Any, depth: int = 0) -> list[tuple[Any, str, idl.AbstractType]]:
        """(owner, field name, IDL type) of every field reachable from ``msg``."""
        out = []
        cls = type(msg)
        for name, t in zip(cls.get_fields_and_field_types(), cls.SLOT_TYPES):
            out.append((msg, name, t))
            value = getattr(msg, name)
            if isinstance(t, idl.NamespacedType) and depth < self.max_depth:
                out += self._leaves(value, depth + 1)
            elif isinstance(t, idl.AbstractSequence) and isinstance(t.value_type, idl.NamespacedType) and depth < self.max_depth:
                for item in value:
                    out += self._leaves(item, depth + 1)
        return out

    def mutate(self, seed: Any) -> Any:
        """A copy of ``seed`` with one to three fields set to random/adversarial values."""
        msg = copy.deepcopy(seed)
        leaves = self._leaves(msg)
        if not leaves:
            return msg  # a message without fields (std_msgs/Empty)
        for _ in range(int(self.rng.integers(1, 4))):
            owner, name, t = leaves[self.rng.integers(len(leaves))]
            value = getattr(owner, name)
            if isinstance(t, idl.AbstractSequence) and len(value) and self.rng.random() < 0.5:
                # change the length only: cut, empty, or repeat the sequence's own items
                k = self.rng.integers(3)
                items = list(value)
                new = items[: self.rng.integers(len(items))] if k == 0 else [] if k == 1 else items * 2 + items[:1]
                try:
                    setattr(owner, name, bytes(new) if isinstance(value, bytes) else new)
                except (AssertionError, TypeError, ValueError):
                    pass
            else:
                self._set(owner, name, t, 0)
        return msg


__all__ = ["ADVERSARIAL_STRINGS", "MessageFuzzer"]
