# Over 400 lines: the launch-file interpreter (YAML schema, substitutions, arguments) as one unit.
"""Parse our ROS 2 YAML launch files into a plan of processes (no ROS needed).

The files in ``launch/`` stay in the ``ros2 launch`` YAML format and run unmodified there.
This module reads what they use, with the semantics of ros2/launch and launch_ros (jazzy,
kilted, rolling):

Entities (one-key mappings in the ``launch:`` list)
  ``arg``      name, default, description, choice [{value}]
  ``let``      name, value
  ``node``     pkg, exec, name, namespace, output, launch-prefix, respawn, respawn_delay,
               sigterm_timeout, sigkill_timeout,
               param [{from: file} | {name, value[, type]}]
  ``include``  file, arg [{name, value}]  (YAML launch files)
  ``let``, ``node`` and ``include`` take ``if`` / ``unless``.
Substitutions: ``$(var x)``, ``$(find-pkg-share pkg)``, ``$(dirname)``, nested, and
``$(eval 'expr')`` for arithmetic and comparisons of literals (e.g. ``'$(var robots) >= 2'``;
ros2 launch evaluates it as Python, this runner allows literals and operators only).
Launch configurations that ``ros2 launch`` itself reads, settable as ``name:=value`` or by a
``let``/``arg``: ``sigterm_timeout`` and ``sigkill_timeout`` (shutdown: seconds from SIGINT to
SIGTERM, then from SIGTERM to SIGKILL; default 5 each; a node's own attribute wins),
``launch-prefix`` (words put before every node's command that has no ``launch-prefix`` of its
own) and ``launch-prefix-filter`` (a regular expression: only executables whose name matches
get that prefix).
Anything else fails with :class:`LaunchError` naming the construct, its file and line.

Values, as ros2 launch reads them
  * Attributes are strings: ``default: 5``, ``if: true``, ``respawn: true``, a ``let`` value 5
    fail ("quote it: default: '5'"). ``respawn`` (a string or substitution) is then read as a
    YAML bool (``"true"``, ``"false"``, ``"1"``, ``"0"``). ``respawn_delay``,
    ``sigterm_timeout`` and ``sigkill_timeout`` are YAML floats (``2.0``; an int ``2`` or a
    quoted ``"2.0"`` fail there).
  * Param ``value``: native YAML numbers, bools and uniform lists keep their type (ints and
    floats together become floats; ``[1, a]`` and ``null`` fail). A string is read as YAML
    only if it contains a substitution (``"$(var n)"`` with n=5 -> 5); a plain quoted literal
    (``"64"``, ``"true"``, ``"0123"``) stays a string.
  * Param ``type``: str, int, float, bool, list_of_str, list_of_int, list_of_float,
    list_of_bool, yaml (= no type). ``type: str`` keeps the substituted text as is (a camera
    serial such as 0123 stays "0123").
  * Launch configurations: command-line arguments are set first; an include's ``arg`` values
    overwrite them for the included file; ``arg`` keeps an existing value before its default.
    Includes are not scoped: the included file's args and lets stay set afterwards.
  * ``OVERRIDE_LAUNCH_PROCESS_OUTPUT`` in the environment replaces every node's ``output``.

Deliberate differences (stricter than ros2 launch, each with a message saying so)
  * An unknown command-line argument is an error (ros2 launch ignores it silently).
  * A missing ``from:`` parameter file is an error (ros2 launch warns and skips it).
  * Relative ``from:`` and ``include`` ``file:`` paths are errors: ros2 launch resolves them
    against the working directory, which is rarely meant; write ``$(find-pkg-share pkg)/...``
    or ``$(dirname)/...``.

Lookups: ``find-pkg-share``/``pkg`` search ``AMENT_PREFIX_PATH`` (``share/<pkg>``,
``lib/<pkg>/<exec>``). For ``robot_stack`` itself the source tree (``ROBOT_STACK_ROOT``, set
by tools/env.sh) comes first, so edited launch/config files and scripts need no rebuild.
"""
from __future__ import annotations

import os
import pathlib
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

import yaml


class LaunchError(ValueError):
    """A launch file cannot be run: unsupported construct, bad value, missing argument."""


# Launch configurations read by ros2 launch itself (not declared by any file), with defaults.
LAUNCH_CONFIGS = {"sigterm_timeout": "5", "sigkill_timeout": "5", "launch-prefix": "", "launch-prefix-filter": ""}


# --------------------------------------------------------------------------------------
# YAML with line numbers
# --------------------------------------------------------------------------------------


class LDict(dict):
    """A mapping that remembers where it was in the file."""

    line: int = 0


def _convert(node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        d = LDict()
        d.line = node.start_mark.line + 1
        for k, v in node.value:
            d[_convert(k)] = _convert(v)
        return d
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v) for v in node.value]
    return yaml.SafeLoader.construct_object(_SCALAR_LOADER, node, deep=True)


_SCALAR_LOADER = yaml.SafeLoader("")


def load_yaml_with_lines(path: pathlib.Path) -> Any:
    try:
        node = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise LaunchError(f"{path}: not valid YAML: {e}") from e
    return None if node is None else _convert(node)


# --------------------------------------------------------------------------------------
# Package lookup
# --------------------------------------------------------------------------------------


def _prefixes() -> list[pathlib.Path]:
    return [pathlib.Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]


def _source_root(pkg: str) -> pathlib.Path | None:
    root = os.environ.get("ROBOT_STACK_ROOT")
    if pkg == "robot_stack" and root and (pathlib.Path(root) / "package.xml").is_file():
        return pathlib.Path(root)
    return None


def find_pkg_share(pkg: str) -> pathlib.Path:
    src = _source_root(pkg)
    if src is not None:
        return src
    for prefix in _prefixes():
        if (prefix / "share" / "ament_index" / "resource_index" / "packages" / pkg).exists():
            return prefix / "share" / pkg
    raise LaunchError(f"package '{pkg}' not found on AMENT_PREFIX_PATH (source tools/env.sh, or the package's install/setup.bash)")


def find_executable(pkg: str, exe: str) -> list[str]:
    """Command prefix that runs ``exe`` of ``pkg`` (Python scripts run with this interpreter)."""
    candidates = []
    src = _source_root(pkg)
    if src is not None:
        candidates.append(src / "scripts" / exe)
    candidates += [prefix / "lib" / pkg / exe for prefix in _prefixes()]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            with open(c, "rb") as f:
                first = f.readline()
            # Run Python scripts with this interpreter: the venv's, whatever the shebang says.
            return [sys.executable, str(c)] if first.startswith(b"#!") and b"python" in first else [str(c)]
    looked = ", ".join(str(c) for c in candidates) or "(AMENT_PREFIX_PATH is empty)"
    raise LaunchError(f"executable '{exe}' of package '{pkg}' not found; looked at: {looked}")


# --------------------------------------------------------------------------------------
# Substitutions
# --------------------------------------------------------------------------------------


class _Ctx:
    """Where an entity is (file and line), for messages."""

    def __init__(self, file: pathlib.Path, line: int):
        self.file, self.line = file, line

    def err(self, msg: str) -> LaunchError:
        return LaunchError(f"{self.file}:{self.line}: {msg}")


def _find_close(text: str, start: int) -> int:
    depth, i = 0, start
    while i < len(text):
        if text.startswith("$(", i):
            depth += 1
            i += 2
            continue
        if text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def substitute(text: str, configs: dict[str, str], ctx: _Ctx) -> str:
    """Resolve ``$(...)`` substitutions in ``text``."""
    out, i = [], 0
    while True:
        j = text.find("$(", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        k = _find_close(text, j)
        if k < 0:
            raise ctx.err(f"unclosed substitution in {text!r}")
        out.append(_eval_substitution(substitute(text[j + 2:k], configs, ctx), configs, ctx))
        i = k + 1


def _eval_substitution(inner: str, configs: dict[str, str], ctx: _Ctx) -> str:
    try:
        parts = shlex.split(inner)
    except ValueError as e:
        raise ctx.err(f"cannot split substitution $({inner}): {e}") from e
    kind, args = (parts[0], parts[1:]) if parts else ("", [])
    if kind == "var" and len(args) == 1:
        if args[0] not in configs:
            raise ctx.err(f"launch configuration '{args[0]}' is not set (declare it with an 'arg' or 'let' first)")
        return configs[args[0]]
    if kind == "find-pkg-share" and len(args) == 1:
        try:
            return str(find_pkg_share(args[0]))
        except LaunchError as e:
            raise ctx.err(str(e)) from e
    if kind == "dirname" and not args:
        return str(ctx.file.parent)
    if kind == "eval" and len(args) == 1:
        return str(_eval_expression(args[0], ctx))
    raise ctx.err(f"substitution $({inner}) is not supported by robot_stack's launch runner "
                  "(supported: $(var NAME), $(find-pkg-share PKG), $(dirname), $(eval 'EXPR'))")


def _eval_expression(expr: str, ctx: _Ctx):
    """A Python expression of literals, arithmetic, comparisons and and/or/not (what launch
    files here need from ros2 launch's ``$(eval)``), evaluated without names or calls."""
    import ast
    import operator as op

    ops = {ast.Add: op.add, ast.Sub: op.sub, ast.Mult: op.mul, ast.Div: op.truediv, ast.FloorDiv: op.floordiv,
           ast.Mod: op.mod, ast.USub: op.neg, ast.Not: op.not_, ast.Eq: op.eq, ast.NotEq: op.ne, ast.Lt: op.lt,
           ast.LtE: op.le, ast.Gt: op.gt, ast.GtE: op.ge}

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.operand))
        if isinstance(node, ast.BoolOp):
            vals = [ev(v) for v in node.values]
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.Compare) and all(type(o) in ops for o in node.ops):
            left = ev(node.left)
            for o, c in zip(node.ops, node.comparators):
                right = ev(c)
                if not ops[type(o)](left, right):
                    return False
                left = right
            return True
        raise ValueError(f"'{ast.unparse(node)}' is not a literal, arithmetic or comparison")

    try:
        return ev(ast.parse(expr, mode="eval"))
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError) as e:
        raise ctx.err(f"cannot evaluate $(eval '{expr}'): {e}") from e


def _truthy(value: str, ctx: _Ctx, what: str) -> bool:
    """An ``if``/``unless`` condition as launch evaluates it: true/false/1/0, any case."""
    v = value.strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise ctx.err(f"'{what}' must be true/false/1/0, got {value!r}")


# --------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------


@dataclass
class ArgDecl:
    name: str
    default: str | None
    description: str
    choices: list[str] | None
    file: pathlib.Path
    line: int
    conditional: bool = False
    """Declared in a file included under an ``if``/``unless`` (``--show-args`` marks it *)."""


@dataclass
class ProcessSpec:
    """One process to run."""

    name: str
    cmd: list[str]
    output: str = "log"
    respawn: bool = False
    respawn_delay_s: float = 0.0
    sigterm_timeout_s: float = 5.0
    """Shutdown: seconds from SIGINT to SIGTERM."""
    sigkill_timeout_s: float = 5.0
    """Shutdown: seconds from SIGTERM to SIGKILL."""
    where: str = ""
    """file:line of the entity (for messages)."""


@dataclass
class LaunchPlan:
    processes: list[ProcessSpec] = field(default_factory=list)
    args: list[ArgDecl] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    configs: dict[str, str] = field(default_factory=dict)

    def cleanup(self) -> None:
        for f in self.temp_files:
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass


# --------------------------------------------------------------------------------------
# Parameter values (launch_ros ParameterValue)
# --------------------------------------------------------------------------------------

# type: of a param item -> Python type, or ("list", item type); None: typed by YAML ('yaml').
_PARAM_TYPES: dict[str, Any] = {
    "str": str, "int": int, "float": float, "bool": bool,
    "list_of_str": ("list", str), "list_of_int": ("list", int), "list_of_float": ("list", float),
    "list_of_bool": ("list", bool), "yaml": None,
}


class _PCtx(_Ctx):
    """Context of one parameter: messages name it."""

    def __init__(self, ctx: _Ctx, name: str):
        super().__init__(ctx.file, ctx.line)
        self.name = name

    def err(self, msg: str) -> LaunchError:
        return super().err(f"parameter '{self.name}': {msg}")


def _check_native(value: Any, want: type | None, ctx: _Ctx) -> Any:
    """A YAML-typed scalar, checked against the wanted type (bool is not a number here)."""
    if want is None:
        if isinstance(value, (bool, int, float, str)):
            return value
        raise ctx.err(f"value {value!r} is not a string, number or boolean")
    ok = isinstance(value, bool) if want is bool else isinstance(value, want) and not isinstance(value, bool)
    if not ok:
        raise ctx.err(f"value {value!r} ({type(value).__name__}) is not of type {want.__name__} as the param type says "
                      "(ros2 launch rejects it)")
    return value


def _uniform_list(items: list, item_type: type | None, ctx: _Ctx) -> list:
    """ROS parameters are arrays of one type: ints and floats together become floats."""
    types = {type(v) for v in items}
    if len(types) <= 1:
        return items
    if types == {int, float} and item_type in (None, float):
        return [float(v) for v in items]
    raise ctx.err(f"mixed-type list {items!r} (ros2 launch rejects it): make every item the same type")


def _yaml_load(text: str, ctx: _Ctx) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ctx.err(f"'{text}' is not valid YAML (ros2 launch reads substituted values as YAML): "
                      "add type: str to keep it as text") from None


def _yaml_value(text: str, ctx: _Ctx) -> Any:
    """Substituted text read as YAML, as launch_ros does; must give a scalar or a uniform list."""
    if not text:
        return text
    parsed = _yaml_load(text, ctx)
    if isinstance(parsed, list):
        return _uniform_list([_check_native(v, None, ctx) for v in parsed], None, ctx)
    if not isinstance(parsed, (bool, int, float, str)):
        raise ctx.err(f"'{text}' reads as YAML {type(parsed).__name__}, not a parameter value: "
                      "add type: str to keep it as text")
    return parsed


def _param_scalar(value: Any, want: type | None, configs: dict[str, str], ctx: _PCtx) -> Any:
    if not isinstance(value, str):
        return _check_native(value, want, ctx)
    if want is None:
        # Only text with a substitution is read as YAML; a plain (quoted) literal stays a string.
        return _yaml_value(substitute(value, configs, ctx), ctx) if "$(" in value else value
    text = substitute(value, configs, ctx)
    if want is str:
        return text
    if want in (int, float):
        try:
            return want(text)
        except ValueError:
            raise ctx.err(f"cannot convert '{text}' to {want.__name__}") from None
    parsed = _yaml_load(text, ctx)
    if not isinstance(parsed, bool):
        raise ctx.err(f"cannot convert '{text}' to bool (true/false)")
    return parsed


def _param_value(value: Any, type_id: str | None, configs: dict[str, str], ctx: _PCtx) -> Any:
    """A parameter value as ros2 launch types it."""
    want = _PARAM_TYPES[type_id] if type_id is not None else None
    if value is None:
        raise ctx.err("has a null value (ros2 launch rejects it); write value: '' for an empty string")
    if isinstance(value, dict):
        raise ctx.err("value is a mapping; write one {name: a.b, value: ...} item per parameter")
    if isinstance(value, list):
        if want is not None and not isinstance(want, tuple):
            raise ctx.err(f"value is a list but type is '{type_id}'")
        item_type = want[1] if want is not None else None
        out = []
        for v in value:
            if isinstance(v, (list, dict)) or v is None:
                raise ctx.err(f"list items must be strings, numbers or booleans, got {v!r}")
            out.append(_param_scalar(v, item_type, configs, ctx))
        return _uniform_list(out, item_type, ctx)
    if isinstance(want, tuple):  # list_of_* written as one string
        parsed = _yaml_load(substitute(value, configs, ctx), ctx) if isinstance(value, str) else None
        if not isinstance(parsed, list):
            raise ctx.err(f"type '{type_id}' needs a list, got {value!r}")
        return _uniform_list([_check_native(v, want[1], ctx) for v in parsed], want[1], ctx)
    return _param_scalar(value, want, configs, ctx)


# --------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------

_COND = {"if", "unless"}
_KEYS = {
    "arg": {"name", "default", "description", "choice"},
    "let": _COND | {"name", "value"},
    "node": _COND | {"pkg", "exec", "name", "namespace", "output", "launch-prefix", "respawn", "respawn_delay",
                     "sigterm_timeout", "sigkill_timeout", "param"},
    "include": _COND | {"file", "arg"},
}


def _join_ns(ns: str) -> str:
    full = "/" + "/".join(p for p in ns.split("/") if p)
    return "" if full == "/" else full


class _Parser:
    def __init__(self) -> None:
        self.plan = LaunchPlan()

    # -- helpers -----------------------------------------------------------------------
    def _str(self, value: Any, configs: dict[str, str], ctx: _Ctx, what: str) -> str:
        """A string attribute, substituted. Like ros2 launch, YAML numbers/booleans are refused."""
        if isinstance(value, (dict, list)):
            raise ctx.err(f"'{what}' must be a string, got a {type(value).__name__}")
        if value is None:
            raise ctx.err(f"'{what}' has no value; quote it ({what}: '') for an empty string")
        if not isinstance(value, str):
            # ros2 launch raises TypeError here; YAML reads 5, 1.0 and true as number/bool.
            text = yaml.safe_dump(value, default_flow_style=True).split("\n")[0]
            raise ctx.err(f"'{what}' must be a string, got {type(value).__name__} {text}: "
                          f"quote it: {what}: '{text}' (ros2 launch rejects unquoted numbers and booleans here)")
        return substitute(value, configs, ctx)

    def _float_attr(self, body: dict, what: str, ctx: _Ctx) -> float | None:
        """An attribute ros2 launch reads with data_type=float: a YAML float, not negative."""
        if what not in body:
            return None
        value = body[what]
        if not isinstance(value, float):
            hint = f": write {what}: {value}.0" if isinstance(value, int) and not isinstance(value, bool) else ""
            raise ctx.err(f"'{what}' must be a float (seconds), got {type(value).__name__} {value!r}{hint} "
                          "(ros2 launch rejects anything else)")
        if value < 0.0:
            raise ctx.err(f"'{what}' must not be negative, got {value}")
        return value

    def _check_keys(self, kind: str, body: Any, ctx: _Ctx, allowed: set[str] | None = None) -> None:
        allowed = _KEYS[kind] if allowed is None else allowed
        if not isinstance(body, dict):
            raise ctx.err(f"'{kind}' must be a mapping of attributes, got {type(body).__name__}")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ctx.err(f"'{kind}' attribute '{unknown[0]}' is not supported by robot_stack's launch runner "
                          f"(supported: {', '.join(sorted(allowed))})")

    def _items(self, kind: str, items: Any, keys: set[str], ctx: _Ctx) -> list[dict]:
        """The list under ``kind`` (arg of an include, choice): mappings with exactly ``keys``."""
        if items is None:
            return []
        if not isinstance(items, list):
            raise ctx.err(f"'{kind}' must be a list of mappings, got {type(items).__name__}")
        for it in items:
            self._check_keys(kind, it, ctx, keys)
            missing = sorted(keys - set(it))
            if missing:
                raise ctx.err(f"each '{kind}' item needs '{missing[0]}', got {dict(it)!r}")
        return items

    def _enabled(self, body: dict, configs: dict[str, str], ctx: _Ctx) -> bool:
        if "if" in body and not _truthy(self._str(body["if"], configs, ctx, "if"), ctx, "if"):
            return False
        if "unless" in body and _truthy(self._str(body["unless"], configs, ctx, "unless"), ctx, "unless"):
            return False
        return True

    # -- entities ------------------------------------------------------------------------
    def parse_file(self, path: pathlib.Path, configs: dict[str, str], conditional: bool = False) -> None:
        path = path.resolve()
        data = load_yaml_with_lines(path)
        ctx = _Ctx(path, getattr(data, "line", 1))
        if not isinstance(data, dict) or "launch" not in data:
            raise ctx.err("a YAML launch file is a mapping with one key 'launch' holding a list of entities")
        extra = sorted(set(data) - {"launch"})
        if extra:
            raise ctx.err(f"unexpected top-level key '{extra[0]}' (only 'launch' is allowed)")
        entities = data["launch"] or []
        if not isinstance(entities, list):
            raise ctx.err("'launch' must hold a list of entities")
        for ent in entities:
            ectx = _Ctx(path, getattr(ent, "line", ctx.line))
            if not isinstance(ent, dict) or len(ent) != 1:
                raise ectx.err(f"each entity is a one-key mapping like '- node: {{...}}', got {ent!r}")
            (kind, body), = ent.items()
            if kind not in _KEYS:
                raise ectx.err(f"launch entity '{kind}' is not supported by robot_stack's launch runner "
                               f"(supported: {', '.join(_KEYS)})")
            if kind == "arg" and isinstance(body, dict) and "choices" in body:
                raise ectx.err("'arg' attribute 'choices' is not the ros2 launch format (ros2 launch rejects it): "
                               "write choice: [{value: a}, {value: b}]")
            self._check_keys(kind, body, ectx)
            getattr(self, f"_e_{kind}")(body, configs, ectx, conditional)

    def _e_arg(self, body, configs: dict[str, str], ctx: _Ctx, conditional: bool) -> None:
        if "name" not in body:
            raise ctx.err("'arg' needs a 'name'")
        name = self._str(body["name"], configs, ctx, "name")
        default = self._str(body["default"], configs, ctx, "default") if "default" in body else None
        choices = None
        if "choice" in body:
            choices = [self._str(c["value"], configs, ctx, "value") for c in self._items("choice", body["choice"], {"value"}, ctx)]
        description = self._str(body.get("description", ""), configs, ctx, "description")
        self.plan.args.append(ArgDecl(name, default, description, choices, ctx.file, ctx.line, conditional))
        # ros2 launch: an existing launch configuration (command line, an include's arg, an
        # earlier let) wins over the default.
        if name in configs:
            value = configs[name]
        elif default is not None:
            value = default
        else:
            desc = f" ({description})" if description else ""
            raise ctx.err(f"launch argument '{name}' is required{desc}: pass {name}:=VALUE")
        if choices is not None and value not in choices:
            raise ctx.err(f"launch argument '{name}' must be one of {choices}, got '{value}'")
        configs[name] = value

    def _e_let(self, body, configs: dict[str, str], ctx: _Ctx, conditional: bool) -> None:
        for req in ("name", "value"):
            if req not in body:
                raise ctx.err(f"'let' needs '{req}'")
        if self._enabled(body, configs, ctx):
            configs[self._str(body["name"], configs, ctx, "name")] = self._str(body["value"], configs, ctx, "value")

    def _e_include(self, body, configs: dict[str, str], ctx: _Ctx, conditional: bool) -> None:
        if "file" not in body:
            raise ctx.err("'include' needs 'file'")
        if not self._enabled(body, configs, ctx):
            return
        file = pathlib.Path(self._str(body["file"], configs, ctx, "file"))
        if not file.is_absolute():
            raise ctx.err(f"include file '{file}' is relative; ros2 launch resolves it against the working directory: "
                          "write $(dirname)/... or $(find-pkg-share PKG)/...")
        if not file.name.endswith((".yaml", ".yml")):
            raise ctx.err(f"include of '{file.name}': only YAML launch files can be included by robot_stack's runner")
        if not file.is_file():
            raise ctx.err(f"included launch file '{file}' does not exist")
        # Like ros2 launch, an include is not scoped: its args are set as launch configurations
        # (over any command-line value) and stay set afterwards, as do the included file's.
        values = [(self._str(a["name"], configs, ctx, "name"), self._str(a["value"], configs, ctx, "value"))
                  for a in self._items("arg", body.get("arg"), {"name", "value"}, ctx)]
        configs.update(values)
        self.parse_file(file, configs, conditional or "if" in body or "unless" in body)

    def _e_node(self, body, configs: dict[str, str], ctx: _Ctx, conditional: bool) -> None:
        for req in ("pkg", "exec"):
            if req not in body:
                raise ctx.err(f"'node' needs '{req}'")
        if not self._enabled(body, configs, ctx):
            return
        exe = self._str(body["exec"], configs, ctx, "exec")
        try:
            cmd = find_executable(self._str(body["pkg"], configs, ctx, "pkg"), exe)
        except LaunchError as e:
            raise ctx.err(str(e)) from e
        ros: list[str] = []
        node_name = self._str(body["name"], configs, ctx, "name") if "name" in body else ""
        if node_name:
            ros += ["-r", f"__node:={node_name}"]
        ns = _join_ns(self._str(body.get("namespace", ""), configs, ctx, "namespace"))
        if ns:
            ros += ["-r", f"__ns:={ns}"]
        for item in self._param_files(body.get("param"), configs, ctx):
            ros += ["--params-file", item]
        if ros:
            cmd += ["--ros-args", *ros]
        output = os.environ.get("OVERRIDE_LAUNCH_PROCESS_OUTPUT") or self._str(body.get("output", "log"), configs, ctx, "output")
        if output not in ("screen", "log", "both"):
            raise ctx.err(f"'output' must be screen, log or both, got '{output}'")
        respawn = self._respawn(body, configs, ctx)
        self.plan.processes.append(ProcessSpec(
            name=self._unique(node_name or exe), cmd=self._launch_prefix(body, configs, ctx, exe) + cmd, output=output,
            respawn=respawn, respawn_delay_s=self._float_attr(body, "respawn_delay", ctx) or 0.0,
            # None: the launch configuration's value at the end of the parse (load_launch).
            sigterm_timeout_s=self._float_attr(body, "sigterm_timeout", ctx),  # type: ignore[arg-type]
            sigkill_timeout_s=self._float_attr(body, "sigkill_timeout", ctx),  # type: ignore[arg-type]
            where=f"{ctx.file}:{ctx.line}",
        ))

    def _respawn(self, body: dict, configs: dict[str, str], ctx: _Ctx) -> bool:
        """``respawn``: a string (or substitution) read as a YAML bool, '1'/'0' included."""
        if "respawn" not in body:
            return False
        text = self._str(body["respawn"], configs, ctx, "respawn")
        try:
            value = yaml.safe_load({"1": "true", "0": "false"}.get(text, text))
        except yaml.YAMLError:
            value = None
        if not isinstance(value, bool):
            raise ctx.err(f"'respawn' must read as a YAML bool (true/false/1/0), got '{text}'")
        return value

    def _param_files(self, params: Any, configs: dict[str, str], ctx: _Ctx) -> list[str]:
        """A node's param list as --params-file paths, in order (inline values go to a temp file each)."""
        if params is None:
            return []
        if not isinstance(params, list):
            raise ctx.err(f"'param' must be a list, got {type(params).__name__}")
        files = []
        for p in params:
            if not isinstance(p, dict):
                raise ctx.err(f"each 'param' item is a mapping ({{name, value}} or {{from: file}}), got {p!r}")
            allowed = {"from"} if "from" in p else {"name", "value", "type"}
            unknown = sorted(set(p) - allowed)
            if unknown:
                raise ctx.err(f"Unexpected key(s) found in 'param': {unknown} (robot_stack's runner reads "
                              "{name, value[, type]} or {from: file})")
            if "from" in p:
                files.append(self._param_file(p, configs, ctx))
                continue
            if "name" not in p or "value" not in p:
                raise ctx.err(f"a 'param' item needs 'name' and 'value' (or 'from'), got keys {sorted(p)}")
            name = self._str(p["name"], configs, ctx, "name")
            type_id = self._str(p["type"], configs, ctx, "type") if "type" in p else None
            if type_id is not None and type_id not in _PARAM_TYPES:
                raise ctx.err(f"parameter '{name}': unknown type '{type_id}' (ros2 launch knows {', '.join(_PARAM_TYPES)})")
            files.append(self._inline_params_file({name: _param_value(p["value"], type_id, configs, _PCtx(ctx, name))}))
        return files

    def _param_file(self, p: dict, configs: dict[str, str], ctx: _Ctx) -> str:
        path = pathlib.Path(self._str(p["from"], configs, ctx, "from"))
        if not path.is_absolute():
            raise ctx.err(f"parameter file '{path}' is relative; ros2 launch resolves it against the working "
                          "directory, not the launch file: write $(find-pkg-share PKG)/... or $(dirname)/...")
        if not path.is_file():
            # ros2 launch only warns and starts the node without it; a missing file is a mistake.
            raise ctx.err(f"parameter file '{path}' does not exist (ros2 launch would warn and skip it)")
        return str(path)

    def _inline_params_file(self, params: dict[str, Any]) -> str:
        fd, path = tempfile.mkstemp(prefix="robot_stack_launch_params_", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            # The file goes to one node only, so the wildcard matches exactly that node.
            yaml.safe_dump({"/**": {"ros__parameters": params}}, f)
        self.plan.temp_files.append(path)
        return path

    def _launch_prefix(self, body: dict, configs: dict[str, str], ctx: _Ctx, exe: str) -> list[str]:
        """Words put before the command, as ros2 launch does: the node's ``launch-prefix``, else
        the ``launch-prefix`` launch configuration if ``launch-prefix-filter`` (a regular
        expression, matched at the start of the executable's name) matches; substituted, then
        split like a shell would (``chrt -f 20``, ``nice -n 5``); empty: none."""
        if "launch-prefix" in body:
            text = self._str(body["launch-prefix"], configs, ctx, "launch-prefix")
        else:
            text = configs.get("launch-prefix", "")
            pattern = configs.get("launch-prefix-filter", "")
            try:
                if text and re.match(pattern, exe) is None:
                    text = ""
            except re.error as e:
                raise LaunchError(f"launch-prefix-filter {pattern!r} is not a regular expression: {e}") from e
        try:
            return shlex.split(text)
        except ValueError as e:
            raise ctx.err(f"cannot split launch-prefix {text!r}: {e}") from e

    def _unique(self, name: str) -> str:
        taken = {p.name for p in self.plan.processes}
        i, out = 2, name
        while out in taken:
            out, i = f"{name}-{i}", i + 1
        return out


def parse_cli_args(items: list[str]) -> dict[str, str]:
    """``name:=value`` items -> dict, as ros2 launch parses them (the last of duplicates wins;
    ``name:=`` with nothing after it is malformed there too)."""
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name or (not value and item.count(":=") == 1):
            raise LaunchError(f"malformed launch argument '{item}', expected format '<name>:=<value>'")
        out[name] = value
    return out


def _seconds(configs: dict[str, str], name: str) -> float:
    text = configs.get(name, LAUNCH_CONFIGS[name])
    try:
        value = float(text)
    except ValueError:
        raise LaunchError(f"launch configuration '{name}' must be a number of seconds, got '{text}'") from None
    if value < 0.0:
        raise LaunchError(f"launch configuration '{name}' must not be negative, got {value}")
    return value


def load_launch(path: str | os.PathLike, cli_args: dict[str, str] | None = None) -> LaunchPlan:
    """Parse ``path`` with ``cli_args`` into a :class:`LaunchPlan` (nothing is started).

    The caller must call ``plan.cleanup()`` (the runner does) to remove temporary
    parameter files.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise LaunchError(f"launch file '{path}' does not exist")
    if not path.name.endswith((".yaml", ".yml")):
        raise LaunchError(f"'{path.name}': robot_stack's runner reads YAML launch files only (*.launch.yaml)")
    cli_args = dict(cli_args or {})
    parser = _Parser()
    # ros2 launch sets command-line arguments as launch configurations before the file runs;
    # an include's 'arg' overwrites them from there on.
    configs = dict(cli_args)
    try:
        parser.parse_file(path, configs)
        declared = {a.name for a in parser.plan.args}
        unknown = sorted(set(cli_args) - declared - set(LAUNCH_CONFIGS))
        if unknown:
            raise LaunchError(
                f"unknown launch argument '{unknown[0]}' for {path}; declared: {', '.join(sorted(declared)) or 'none'}; "
                f"and launch's own: {', '.join(LAUNCH_CONFIGS)} (ros2 launch would silently ignore it; robot_stack's "
                "runner refuses it to catch typos)")
        # ros2 launch reads these two when it shuts a process down: their final values.
        term, kill = _seconds(configs, "sigterm_timeout"), _seconds(configs, "sigkill_timeout")
    except LaunchError:
        parser.plan.cleanup()
        raise
    for p in parser.plan.processes:
        p.sigterm_timeout_s = term if p.sigterm_timeout_s is None else p.sigterm_timeout_s
        p.sigkill_timeout_s = kill if p.sigkill_timeout_s is None else p.sigkill_timeout_s
    parser.plan.configs = configs
    return parser.plan


def declared_args(path: str | os.PathLike) -> list[ArgDecl]:
    """The ``arg`` entities of a launch file and of the files it includes (for --show-args),
    first declaration of each name, without evaluating anything but ``$(dirname)`` and
    ``$(find-pkg-share)`` in include paths (an include whose path needs more is skipped, as
    ros2 launch does). Args of an include with ``if``/``unless`` are marked conditional."""
    out: dict[str, ArgDecl] = {}

    def walk(file: pathlib.Path, conditional: bool, seen: tuple) -> None:
        data = load_yaml_with_lines(file)
        entities = data.get("launch") if isinstance(data, dict) else None
        for ent in entities if isinstance(entities, list) else []:
            if not isinstance(ent, dict) or len(ent) != 1:
                continue
            (kind, body), = ent.items()
            if not isinstance(body, dict):
                continue
            if kind == "arg" and isinstance(body.get("name"), str) and body["name"] not in out:
                choices = [str(c.get("value")) for c in body.get("choice") or [] if isinstance(c, dict)] or None
                default = body.get("default")
                out[body["name"]] = ArgDecl(body["name"], None if default is None else str(default),
                                            str(body.get("description", "")), choices, file, getattr(body, "line", 0),
                                            conditional)
            elif kind == "include" and isinstance(body.get("file"), str):
                try:
                    inc = pathlib.Path(substitute(body["file"], {}, _Ctx(file, 0))).resolve()
                except LaunchError:
                    continue
                if inc.is_file() and inc not in seen:
                    walk(inc, conditional or "if" in body or "unless" in body, seen + (inc,))

    path = pathlib.Path(path).resolve()
    walk(path, False, (path,))
    return list(out.values())
