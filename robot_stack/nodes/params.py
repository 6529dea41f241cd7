"""One helper between a dataclass config and a node's declared ROS parameters.

:func:`declare_config` declares one typed, read-only, documented parameter per dataclass
field (description = the field's docstring, via :func:`robot_stack.types.config.field_docs`),
reads the values given at start-up (``--params-file``, ``-p name:=value``,
``parameter_overrides``) and returns the config object. It fails at start-up with a
:class:`~robot_stack.types.config.ConfigError` that names the parameter when a value has the
wrong type, when a parameter is given that the config does not have (a typo), or when the
config's own ``validate()`` rejects a value; and, for a node started by :func:`run_node`, when
a ``--params-file`` holds no section for this node or a section whose name is a near miss of
the node's (a typo in the top-level key, which ROS would ignore silently).

Type mapping: ``bool``/``int``/``float``/``str`` -> the ROS scalar types; ``tuple[float, ...]``
and fixed-length float tuples -> double array (likewise int/str/bool arrays); ``X | None``
-> the type of X, unset meaning None; nested dataclasses -> ``outer.inner`` names. An
integer is accepted where a float is expected (``rate_hz: 200`` in YAML is not a typo).

:func:`parameter_overrides` turns a config or a plain dict into the list that
``Node(..., parameter_overrides=...)`` takes, for tests and for in-process nodes.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, Callable, TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from robot_stack.types.config import ConfigError, field_docs, from_dict, to_dict

T = TypeVar("T")

# Parameters every rclpy node may receive that are not part of any config.
_ALWAYS_KNOWN_PREFIXES = ("use_sim_time", "qos_overrides.", "start_type_description_service")

_SCALAR = {
    bool: Parameter.Type.BOOL,
    int: Parameter.Type.INTEGER,
    float: Parameter.Type.DOUBLE,
    str: Parameter.Type.STRING,
}
_ARRAY = {
    bool: Parameter.Type.BOOL_ARRAY,
    int: Parameter.Type.INTEGER_ARRAY,
    float: Parameter.Type.DOUBLE_ARRAY,
    str: Parameter.Type.STRING_ARRAY,
}


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        raise ConfigError(f"union type {tp} cannot be a ROS parameter (only 'X | None')")
    return tp, False


def ros_type(tp: Any) -> Parameter.Type:
    """ROS parameter type for a dataclass field type."""
    tp, _ = _strip_optional(tp)
    if tp in _SCALAR:
        return _SCALAR[tp]
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        items = {a for a in typing.get_args(tp) if a is not Ellipsis}
        if len(items) == 1 and next(iter(items)) in _ARRAY:
            return _ARRAY[next(iter(items))]
    raise ConfigError(f"field type {tp} has no ROS parameter type")


def _flat_fields(cls: type, prefix: str = "") -> list[tuple[str, Any, Any, str]]:
    """(parameter name, type, default, description) for every leaf field of ``cls``."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        name = prefix + f.name
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        if dataclasses.is_dataclass(tp):
            out.extend(_flat_fields(tp, name + "."))
            continue
        out.append((name, tp, default, docs.get(f.name, "")))
    return out


def _coerce_override(node: Node, name: str, ptype: Parameter.Type) -> None:
    """Let integers stand for floats in overrides (YAML ``200`` for a double parameter)."""
    # rclpy keeps start-up overrides in this dict until the parameter is declared; it has no
    # public API to adjust one, and without this `rate_hz: 200` would fail as a type error.
    overrides = node._parameter_overrides  # noqa: SLF001
    p = overrides.get(name)
    if p is None:
        return
    if ptype == Parameter.Type.DOUBLE and p.type_ == Parameter.Type.INTEGER:
        overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(p.value))
    elif ptype == Parameter.Type.DOUBLE_ARRAY and p.type_ == Parameter.Type.INTEGER_ARRAY:
        overrides[name] = Parameter(name, Parameter.Type.DOUBLE_ARRAY, [float(v) for v in p.value])


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = value
    return out


_PARAMS_FILES: list[str] = []
"""The --params-file arguments of the process (set by run_node; checked by declare_config)."""


def params_files(args: list[str]) -> list[str]:
    """The ``--params-file`` paths among ROS command-line arguments."""
    out, ros = [], False
    for i, a in enumerate(args):
        if a == "--ros-args":
            ros = True
        elif a == "--":
            ros = False
        elif ros and a == "--params-file" and i + 1 < len(args):
            out.append(args[i + 1])
    return out


def _section_matches(key: str, fq_name: str) -> bool:
    """Whether a params-file section key (node name, namespaced name, or a wildcard such as
    ``/**`` or ``/**/spacemouse``) applies to the node ``fq_name`` (``/ns/name``), as in rcl."""
    import re

    pattern = re.escape("/" + key.lstrip("/")).replace("/\\*\\*", "(?:/.*)?").replace("\\*", "[^/]*")
    return re.fullmatch(pattern, fq_name) is not None


def check_params_files(node: Node, files: list[str]) -> None:
    """ConfigError when a params file has no section for ``node``, or a section whose name is a
    near miss of the node's (ROS ignores such a section without a word)."""
    import yaml

    fq, name = node.get_fully_qualified_name(), node.get_name()
    for path in files:
        try:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"params file {path}: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"params file {path} must map node names to 'ros__parameters'")
        keys = [str(k) for k in data]
        near = [k for k in keys if not _section_matches(k, fq)
                and difflib.get_close_matches(k.strip("/").rsplit("/", 1)[-1], [name], n=1, cutoff=0.75)]
        if near:
            raise ConfigError(f"params file {path}: section '{near[0]}' does not name node '{fq}' (did you mean "
                              f"'{fq}' or '/**/{name}'?); ROS would ignore it")
        if not any(_section_matches(k, fq) for k in keys):
            raise ConfigError(f"params file {path} has no section for node '{fq}' (its sections: "
                              f"{', '.join(keys) or 'none'}); name the node, or '/**' for every node")


def declare_config(node: Node, cls: type[T], *, prefix: str = "", extra_known: tuple[str, ...] = ()) -> T:
    """Declare ``cls``'s fields as parameters of ``node`` and return the config they give.

    Raises ConfigError naming the parameter for a wrong type, an unknown parameter given at
    start-up (with a "did you mean" hint), or a value the config's ``validate()`` rejects.
    ``extra_known`` lists further parameter names the node declares itself.
    """
    where = f"node '{node.get_fully_qualified_name()}'"
    if _PARAMS_FILES:
        check_params_files(node, _PARAMS_FILES)
    values: dict[str, Any] = {}
    declared = []
    for name, tp, default, doc in _flat_fields(cls, prefix):
        ptype = ros_type(tp)
        inner, optional = _strip_optional(tp)
        type_doc = f" [{ptype.name.lower()}{', optional' if optional else ''}]"
        descriptor = ParameterDescriptor(description=(doc + type_doc).strip(), read_only=True)
        _coerce_override(node, name, ptype)
        empty = default is None or default is dataclasses.MISSING or (isinstance(default, (tuple, list)) and not default)
        try:
            if empty:
                # No value to infer the type from: declare by type; unset -> dataclass default.
                param = node.declare_parameter(name, ptype, descriptor)
            else:
                value = list(default) if isinstance(default, tuple) else default
                if ptype == Parameter.Type.DOUBLE_ARRAY:
                    value = [float(v) for v in value]
                elif ptype == Parameter.Type.DOUBLE:
                    value = float(value)
                param = node.declare_parameter(name, Parameter(name, ptype, value).value, descriptor)
        except InvalidParameterTypeException as e:
            given = node._parameter_overrides.get(name)  # noqa: SLF001 (see _coerce_override)
            got = f"{given.value!r} ({given.type_.name.lower()})" if given is not None else "?"
            raise ConfigError(
                f"{where}: parameter '{name}' must be {ptype.name.lower()}, got {got}; fix its value "
                f"in the params file or the -p override ({doc or 'no description'})"
            ) from e
        except InvalidParameterValueException as e:
            raise ConfigError(f"{where}: parameter '{name}': {e}") from e
        declared.append(name)
        value = param.value
        if value is None:
            if default is dataclasses.MISSING:
                raise ConfigError(f"{where}: required parameter '{name}' is not set ({doc})")
            continue  # unset optional / empty array: keep the dataclass default
        if ptype in _ARRAY.values():
            value = list(value)
        values[name[len(prefix):]] = value

    known = set(declared) | set(extra_known)
    for given in sorted(node._parameter_overrides):  # noqa: SLF001 (see _coerce_override)
        if given in known or given.startswith(_ALWAYS_KNOWN_PREFIXES):
            continue
        if prefix and not given.startswith(prefix):
            continue
        close = difflib.get_close_matches(given, sorted(known), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(
            f"{where}: unknown parameter '{given}'{hint}; known parameters: {', '.join(sorted(declared))}"
        )
    return from_dict(cls, _nest(values), where=f"{where} parameters")


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def parameter_overrides(config: Any, *, prefix: str = "", skip_none: bool = True) -> list[Parameter]:
    """``Node(parameter_overrides=...)`` list for a config object or a (nested) dict."""
    data = to_dict(config) if dataclasses.is_dataclass(config) else dict(config)
    params = []
    for name, value in _flatten(data, prefix).items():
        if value is None and skip_none:
            continue
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, list) and not value:
            continue  # an empty list has no ROS type; the default stands
        params.append(Parameter(name, value=value))
    return params


def params_yaml(node_name: str, config: Any) -> dict[str, Any]:
    """``{node_name: {ros__parameters: {...}}}`` for a config (ROS 2 params file layout)."""
    data = to_dict(config) if dataclasses.is_dataclass(config) else dict(config)
    data = {k: v for k, v in _flatten(data).items() if v is not None and v != []}
    return {node_name: {"ros__parameters": _nest(data)}}


def run_node(make_node: Callable[[], Node], args: list[str] | None = None, *,
             make_executor: Callable[[Node], Any] | None = None,
             done: Callable[[Node], Any] | None = None,
             exit_codes: dict[type, int] | None = None,
             fatal_exit_code: int = 2) -> int:
    """The body of every node's ``main()``: init, build, spin until Ctrl-C/SIGTERM, clean up.

    A :class:`ConfigError` at start-up (bad parameter) is printed as one line and gives exit
    status 2, so a launch shows the parameter's name instead of a traceback; ``exit_codes``
    maps further start-up errors to statuses (e.g. an unreachable robot). ``make_executor``
    builds the executor (default: single-threaded); ``done(node)`` returns an Event that ends
    the spin (e.g. evaluation finished, or a failed control loop).

    Ctrl-C and SIGTERM end the spin here, not in rclpy: rclpy's own handler would shut the ROS
    context down first, and the node could then publish nothing more while it closes. So on
    any exit the node's ``close()`` runs with the context still up (the Franka node stops the
    arm and reports it; the actor waits until the learner has acknowledged every step record),
    with further Ctrl-C/SIGTERM ignored until it returns; then the executor, the node and the
    context are torn down.
    """
    import signal
    import sys
    import threading

    import rclpy
    from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from rclpy.task import Future

    codes = {ConfigError: 2, **(exit_codes or {})}
    argv = list(sys.argv if args is None else args)
    try:
        rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    except RuntimeError as e:  # rcl's RCLError: a malformed -p rule or an unparsable --params-file
        print(f"error: the ROS arguments cannot be used: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    _PARAMS_FILES[:] = params_files(argv)
    # While the node is built (a robot connection may be retried for seconds), a signal interrupts
    # at once; once it spins, the handler only sets a flag: an exception raised from a signal
    # handler can surface inside any code, e.g. an object's __del__, where Python ignores it
    # (then the node never stopped: seen once in tests/test_run_node.py).
    stop_requested = threading.Event()

    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    node = None
    executor = None
    try:
        node = make_node()
        for sig in previous:
            signal.signal(sig, lambda _signum, _frame: stop_requested.set())
        executor = make_executor(node) if make_executor is not None else SingleThreadedExecutor()
        executor.add_node(node)
        stop = done(node) if done is not None else None
        # A stop request is seen within 0.25 s. rclpy's C++ events executor spins in slices of
        # that length, taking every event itself: no Python loop iteration per message (a fifth
        # of a busy recorder's CPU with spin_once). A fresh future per slice: each call adds a
        # done-callback to the future it is given.
        native = not isinstance(executor, Executor)
        while rclpy.ok() and not stop_requested.is_set() and not (stop is not None and stop.is_set()):
            if native:
                executor.spin_until_future_complete(Future(), timeout_sec=0.25)
            else:
                executor.spin_once(timeout_sec=0.25)
    except tuple(codes) as e:
        print(f"error: {e}", file=sys.stderr)
        return next(code for kind, code in codes.items() if isinstance(e, kind))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C / SIGTERM: a normal stop (or the node shut itself down, see below)
    except Exception:
        # A node that shut its context down before spinning makes the executor fail on the
        # dead context; its own error message (below) is the one that matters then.
        if getattr(node, "fatal_error", None) is None and rclpy.ok():
            raise
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut close() short
        try:
            if node is not None:
                close = getattr(node, "close", None)
                if callable(close):
                    close()
                if executor is not None:
                    executor.shutdown(timeout_sec=2.0)
                node.destroy_node()
            rclpy.try_shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    # A node that found a fatal problem after start-up (set node.fatal_error, then shut the
    # context down) exits like a start-up error.
    fatal = getattr(node, "fatal_error", None)
    if fatal:
        print(f"error: {fatal}", file=sys.stderr)
        return fatal_exit_code
    return 0
