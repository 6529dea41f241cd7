# Over 400 lines: the launch-file interpreter (YAML schema, substitutions, arguments) as one unit.
"""Parse ROS 2 YAML launch files into a plan of processes (no ROS needed).

The files stay in the documented ``ros2 launch`` YAML format and run unmodified there; this
module implements the subset robot_stack uses, with the semantics of ros2/launch and
launch_ros (checked against rolling and jazzy):

Entities (one-key mappings in the ``launch:`` list)
  ``arg``        name, default, description, choice [{value}]
  ``let``        name, value
  ``node``       pkg, exec, name, namespace, output, args, ros_args, respawn, respawn_delay,
                 exec_name, on_exit (``shutdown``), env [{name, value}],
                 param [{name, value[, type]} | {name, param: [...]} | {from: file[, allow_substs]}],
                 remap [{from, to}], launch-prefix
  ``executable`` cmd, name, output, cwd, env, respawn, respawn_delay, on_exit, launch-prefix
  ``include``    file, arg [{name, value}]  (YAML launch files only)
  ``group``      scoped, forwarding, keep [{name, value}], children
  ``push_ros_namespace`` / ``push-ros-namespace``  namespace
  ``set_env``    name, value;   ``log``  message
  every entity but ``arg``: ``if`` / ``unless``
Substitutions
  ``$(var x)``, ``$(env X [default])``, ``$(find-pkg-share pkg)``, ``$(find-pkg-prefix pkg)``,
  ``$(dirname)``, ``$(filename)``; nested substitutions work.
Anything else fails with :class:`LaunchError` naming the construct and its file and line;
so do the constructs ros2 launch rejects: ``$(optenv ...)``, ``set-env``, ``choices:``,
``log: {level}``, unknown keys in a ``param`` item.

Values, as ros2 launch reads them
  * Attributes are strings: ``default: 5``, ``if: true``, a ``let``/include-arg value 5 fail
    ("quote it: default: '5'"). Exceptions with upstream's types: ``respawn`` and
    ``group`` ``scoped``/``forwarding`` also take a YAML bool, ``respawn_delay`` a float,
    ``allow_substs`` a bool.
  * Param ``value``: native YAML numbers, bools and uniform lists keep their type (ints and
    floats together become floats; ``[1, a]`` and ``null`` fail). A string is read as YAML
    only if it contains a substitution (``"$(var n)"`` with n=5 -> 5); a plain quoted literal
    (``"64"``, ``"true"``, ``"0123"``) stays a string.
  * Param ``type``: str, int, float, bool, list_of_str, list_of_int, list_of_float,
    list_of_bool, yaml (= no type). ``type: str`` keeps the substituted text as is (a camera
    serial such as 0123 stays "0123").
  * ``allow_substs: true`` on ``from:`` substitutes ``$(...)`` inside the parameter file (a
    temporary copy is passed to the node).
  * Launch configurations: command-line arguments are set first; an include's ``arg`` values
    overwrite them for the included file; ``arg`` keeps an existing value before its default.
    Includes are NOT scoped (the included file's args and lets stay set afterwards); a
    ``group`` (scoped by default) scopes.

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
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

import yaml


class LaunchError(ValueError):
    """A launch file cannot be run: unsupported construct, bad value, missing argument."""


# --------------------------------------------------------------------------------------
# YAML with line numbers
# --------------------------------------------------------------------------------------


class LDict(dict):
    """A mapping that remembers where it was in the file."""

    line: int = 0


class LList(list):
    line: int = 0


def _convert(node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        d = LDict()
        d.line = node.start_mark.line + 1
        for k, v in node.value:
            d[_convert(k)] = _convert(v)
        return d
    if isinstance(node, yaml.SequenceNode):
        lst = LList(_convert(v) for v in node.value)
        lst.line = node.start_mark.line + 1
        return lst
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


def find_pkg_prefix(pkg: str) -> pathlib.Path:
    for prefix in _prefixes():
        if (prefix / "share" / "ament_index" / "resource_index" / "packages" / pkg).exists():
            return prefix
    raise LaunchError(f"package '{pkg}' not found on AMENT_PREFIX_PATH")


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


@dataclass
class Scope:
    """Launch configurations and ROS namespace visible to an entity."""

    configs: dict[str, str]
    namespace: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def child(self) -> "Scope":
        return Scope(dict(self.configs), self.namespace, dict(self.env))


class _Ctx:
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


def substitute(text: str, scope: Scope, ctx: _Ctx) -> str:
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
        inner = substitute(text[j + 2:k], scope, ctx)
        out.append(_eval_substitution(inner, scope, ctx))
        i = k + 1


def _eval_substitution(inner: str, scope: Scope, ctx: _Ctx) -> str:
    try:
        parts = shlex.split(inner)
    except ValueError as e:
        raise ctx.err(f"cannot split substitution $({inner}): {e}") from e
    if not parts:
        raise ctx.err("empty substitution $()")
    kind, args = parts[0], parts[1:]
    if kind == "var":
        if len(args) != 1:
            raise ctx.err(f"$(var ...) takes one name, got $({inner})")
        if args[0] not in scope.configs:
            raise ctx.err(f"launch configuration '{args[0]}' is not set (declare it with an 'arg' or 'let' first)")
        return scope.configs[args[0]]
    if kind == "optenv":
        name = args[0] if args else "NAME"
        raise ctx.err(f"Unknown substitution: optenv (ros2 launch has no $(optenv ...); use $(env {name} DEFAULT), "
                      f"e.g. $(env {name} '') for an empty default)")
    if kind == "env":
        if not 1 <= len(args) <= 2:
            raise ctx.err(f"$(env NAME [default]) expected, got $({inner})")
        value = scope.env.get(args[0], os.environ.get(args[0]))
        if value is not None:
            return value
        if len(args) == 2:
            return args[1]
        raise ctx.err(f"environment variable '{args[0]}' is not set and $(env) has no default")
    if kind == "find-pkg-share":
        if len(args) != 1:
            raise ctx.err(f"$(find-pkg-share PKG) expected, got $({inner})")
        try:
            return str(find_pkg_share(args[0]))
        except LaunchError as e:
            raise ctx.err(str(e)) from e
    if kind == "find-pkg-prefix":
        try:
            return str(find_pkg_prefix(args[0]))
        except LaunchError as e:
            raise ctx.err(str(e)) from e
    if kind == "dirname":
        return str(ctx.file.parent)
    if kind == "filename":
        return str(ctx.file)
    raise ctx.err(f"substitution $({kind} ...) is not supported by robot_stack's launch runner "
                  "(supported: var, env, find-pkg-share, find-pkg-prefix, dirname, filename)")


def _truthy(value: str, ctx: _Ctx, what: str) -> bool:
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


@dataclass
class ProcessSpec:
    """One process to run."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    cwd: str | None = None
    output: str = "log"
    respawn: bool = False
    respawn_delay_s: float = 0.0
    shutdown_on_exit: bool = False
    where: str = ""
    """file:line of the entity (for messages)."""
    is_node: bool = True


@dataclass
class LaunchPlan:
    processes: list[ProcessSpec] = field(default_factory=list)
    args: list[ArgDecl] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    configs: dict[str, str] = field(default_factory=dict)

    def cleanup(self) -> None:
        for f in self.temp_files:
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass


# --------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------

_COMMON = {"if", "unless"}
_NODE_KEYS = _COMMON | {"pkg", "exec", "name", "namespace", "output", "args", "ros_args", "respawn", "respawn_delay",
                        "exec_name", "on_exit", "env", "param", "remap", "launch-prefix"}
_EXEC_KEYS = _COMMON | {"cmd", "name", "output", "cwd", "env", "respawn", "respawn_delay", "on_exit", "launch-prefix"}


def _join_ns(base: str, ns: str) -> str:
    if ns.startswith("/"):
        full = ns
    else:
        full = (base.rstrip("/") + "/" + ns) if ns else base
    full = "/" + "/".join(p for p in full.split("/") if p)
    return "" if full == "/" else full


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


# entity name -> handler; the spellings ros2 launch accepts (set_env has no dashed form).
_ENTITIES = {
    "arg": "_e_arg", "let": "_e_let", "node": "_e_node", "executable": "_e_executable",
    "include": "_e_include", "group": "_e_group", "push_ros_namespace": "_e_push_ros_namespace",
    "push-ros-namespace": "_e_push_ros_namespace", "set_env": "_e_set_env", "log": "_e_log",
}


class _Parser:
    def __init__(self, cli_args: dict[str, str]):
        self.cli_args = cli_args
        self.plan = LaunchPlan()
        self._anon = 0

    # -- helpers -----------------------------------------------------------------------
    def _str(self, value: Any, scope: Scope, ctx: _Ctx, what: str) -> str:
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
        return substitute(value, scope, ctx)

    def _bool_attr(self, value: Any, scope: Scope, ctx: _Ctx, what: str) -> bool:
        """A bool attribute that ros2 launch reads with data_type=bool: YAML bool or a string."""
        if isinstance(value, bool):
            return value
        return _truthy(self._str(value, scope, ctx, what), ctx, what)

    def _check_keys(self, kind: str, body: Any, allowed: set[str], ctx: _Ctx) -> None:
        if not isinstance(body, dict):
            raise ctx.err(f"'{kind}' must be a mapping of attributes, got {type(body).__name__}")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ctx.err(f"'{kind}' attribute '{unknown[0]}' is not supported by robot_stack's launch runner "
                          f"(supported: {', '.join(sorted(allowed))})")

    def _items(self, kind: str, items: Any, allowed: set[str], required: set[str], ctx: _Ctx) -> list[dict]:
        """The list under ``kind`` (env, arg, keep, choice ...): mappings with only ``allowed`` keys."""
        if items is None:
            return []
        if not isinstance(items, list):
            raise ctx.err(f"'{kind}' must be a list of mappings, got {type(items).__name__}")
        for it in items:
            self._check_keys(kind, it, allowed, ctx)
            missing = sorted(required - set(it))
            if missing:
                raise ctx.err(f"each '{kind}' item needs '{missing[0]}', got {dict(it)!r}")
        return items

    def _enabled(self, body: dict, scope: Scope, ctx: _Ctx) -> bool:
        if "if" in body and not _truthy(self._str(body["if"], scope, ctx, "if"), ctx, "if"):
            return False
        if "unless" in body and _truthy(self._str(body["unless"], scope, ctx, "unless"), ctx, "unless"):
            return False
        return True

    # -- entities ------------------------------------------------------------------------
    def parse_file(self, path: pathlib.Path, scope: Scope) -> None:
        path = path.resolve()
        data = load_yaml_with_lines(path)
        ctx = _Ctx(path, getattr(data, "line", 1))
        if not isinstance(data, dict) or "launch" not in data:
            raise ctx.err("a YAML launch file is a mapping with one key 'launch' holding a list of entities")
        extra = sorted(set(data) - {"launch"})
        if extra:
            raise ctx.err(f"unexpected top-level key '{extra[0]}' (only 'launch' is allowed)")
        self.parse_entities(data["launch"] or [], path, scope)

    def parse_entities(self, entities: Any, path: pathlib.Path, scope: Scope) -> None:
        if not isinstance(entities, list):
            raise _Ctx(path, getattr(entities, "line", 0)).err("expected a list of entities")
        for ent in entities:
            ctx = _Ctx(path, getattr(ent, "line", getattr(entities, "line", 0)))
            if not isinstance(ent, dict) or len(ent) != 1:
                raise ctx.err(f"each entity is a one-key mapping like '- node: {{...}}', got {ent!r}")
            (kind, body), = ent.items()
            handler = _ENTITIES.get(str(kind))
            if handler is None:
                hint = " (ros2 launch spells it 'set_env')" if kind == "set-env" else ""
                raise ctx.err(f"launch entity '{kind}' is not supported by robot_stack's launch runner{hint} "
                              f"(supported: {', '.join(_ENTITIES)})")
            getattr(self, handler)(body, scope, ctx)

    def _e_arg(self, body, scope: Scope, ctx: _Ctx) -> None:
        if isinstance(body, dict) and "choices" in body:
            raise ctx.err("'arg' attribute 'choices' is not the ros2 launch format (ros2 launch rejects it): "
                          "write choice: [{value: a}, {value: b}]")
        self._check_keys("arg", body, {"name", "default", "description", "choice"}, ctx)
        if "name" not in body:
            raise ctx.err("'arg' needs a 'name'")
        name = self._str(body["name"], scope, ctx, "name")
        default = self._str(body["default"], scope, ctx, "default") if "default" in body else None
        choices = None
        if "choice" in body:
            choices = [self._str(c["value"], scope, ctx, "value")
                       for c in self._items("choice", body["choice"], {"value"}, {"value"}, ctx)]
        description = self._str(body.get("description", ""), scope, ctx, "description")
        decl = ArgDecl(name, default, description, choices, ctx.file, ctx.line)
        self.plan.args.append(decl)
        # ros2 launch: an existing launch configuration (command line, an include's arg, an
        # earlier let) wins over the default.
        if name in scope.configs:
            value = scope.configs[name]
        elif default is not None:
            value = default
        else:
            desc = f" ({decl.description})" if decl.description else ""
            raise ctx.err(f"launch argument '{name}' is required{desc}: pass {name}:=VALUE")
        if choices is not None and value not in choices:
            raise ctx.err(f"launch argument '{name}' must be one of {choices}, got '{value}'")
        scope.configs[name] = value

    def _e_let(self, body, scope: Scope, ctx: _Ctx) -> None:
        self._check_keys("let", body, _COMMON | {"name", "value"}, ctx)
        for req in ("name", "value"):
            if req not in body:
                raise ctx.err(f"'let' needs '{req}'")
        if not self._enabled(body, scope, ctx):
            return
        scope.configs[self._str(body["name"], scope, ctx, "name")] = self._str(body["value"], scope, ctx, "value")

    def _e_log(self, body, scope: Scope, ctx: _Ctx) -> None:
        self._check_keys("log", body, _COMMON | {"message"}, ctx)
        if "message" not in body:
            raise ctx.err("'log' needs 'message'")
        if self._enabled(body, scope, ctx):
            self.plan.messages.append(self._str(body["message"], scope, ctx, "message"))

    def _e_set_env(self, body, scope: Scope, ctx: _Ctx) -> None:
        self._check_keys("set_env", body, _COMMON | {"name", "value"}, ctx)
        for req in ("name", "value"):
            if req not in body:
                raise ctx.err(f"'set_env' needs '{req}'")
        if self._enabled(body, scope, ctx):
            scope.env[self._str(body["name"], scope, ctx, "name")] = self._str(body["value"], scope, ctx, "value")

    def _e_push_ros_namespace(self, body, scope: Scope, ctx: _Ctx) -> None:
        self._check_keys("push_ros_namespace", body, _COMMON | {"namespace"}, ctx)
        if "namespace" not in body:
            raise ctx.err("'push_ros_namespace' needs 'namespace'")
        if self._enabled(body, scope, ctx):
            scope.namespace = _join_ns(scope.namespace, self._str(body["namespace"], scope, ctx, "namespace"))

    def _e_group(self, body, scope: Scope, ctx: _Ctx) -> None:
        if isinstance(body, list):  # shorthand seen in some docs: '- group: [entities]'
            body = {"children": body}
        self._check_keys("group", body, _COMMON | {"scoped", "forwarding", "keep", "children"}, ctx)
        if not self._enabled(body, scope, ctx):
            return
        scoped = self._bool_attr(body.get("scoped", True), scope, ctx, "scoped")
        forwarding = self._bool_attr(body.get("forwarding", True), scope, ctx, "forwarding")
        if scoped:
            inner = scope.child()
            if not forwarding:
                inner.configs = {}
            for k in self._items("keep", body.get("keep"), {"name", "value"}, {"name", "value"}, ctx):
                inner.configs[self._str(k["name"], scope, ctx, "name")] = self._str(k["value"], scope, ctx, "value")
        else:
            inner = scope
        self.parse_entities(body.get("children", []) or [], ctx.file, inner)

    def _e_include(self, body, scope: Scope, ctx: _Ctx) -> None:
        self._check_keys("include", body, _COMMON | {"file", "arg"}, ctx)
        if "file" not in body:
            raise ctx.err("'include' needs 'file'")
        if not self._enabled(body, scope, ctx):
            return
        file = pathlib.Path(self._str(body["file"], scope, ctx, "file"))
        if not file.is_absolute():
            raise ctx.err(f"include file '{file}' is relative; ros2 launch resolves it against the working directory: "
                          "write $(dirname)/... or $(find-pkg-share PKG)/...")
        if not file.name.endswith((".yaml", ".yml")):
            raise ctx.err(f"include of '{file.name}': only YAML launch files can be included by robot_stack's runner")
        if not file.is_file():
            raise ctx.err(f"included launch file '{file}' does not exist")
        # Like ros2 launch: an include is NOT scoped. Its args are set as launch configurations
        # (over any command-line value) and stay set afterwards, as do the included file's args
        # and lets. Wrap the include in a 'group' to scope it.
        values = [(self._str(a["name"], scope, ctx, "name"), self._str(a["value"], scope, ctx, "value"))
                  for a in self._items("arg", body.get("arg"), {"name", "value"}, {"name", "value"}, ctx)]
        scope.configs.update(values)
        self.parse_file(file, scope)

    # -- processes ---------------------------------------------------------------------
    def _env_list(self, body, scope: Scope, ctx: _Ctx) -> dict[str, str]:
        env = dict(scope.env)
        for e in self._items("env", body.get("env"), {"name", "value"}, {"name", "value"}, ctx):
            env[self._str(e["name"], scope, ctx, "name")] = self._str(e["value"], scope, ctx, "value")
        return env

    def _common_process(self, body, scope, ctx) -> dict[str, Any]:
        out = {}
        output = self._str(body.get("output", "log"), scope, ctx, "output")
        if output not in ("screen", "log", "both"):
            raise ctx.err(f"'output' must be screen, log or both, got '{output}'")
        out["output"] = output
        # ros2 launch reads respawn with data_type=bool and respawn_delay with data_type=float:
        # YAML true / 2.0 are accepted there, an integer delay (2) is not.
        out["respawn"] = self._bool_attr(body.get("respawn", False), scope, ctx, "respawn")
        delay = body.get("respawn_delay", 0.0)
        if isinstance(delay, int) and not isinstance(delay, bool):
            raise ctx.err(f"'respawn_delay' must be a float, got int {delay}: write respawn_delay: {delay}.0")
        if not isinstance(delay, float):
            text = self._str(delay, scope, ctx, "respawn_delay")
            try:
                delay = float(text)
            except ValueError:
                raise ctx.err(f"'respawn_delay' must be a number of seconds, got '{text}'") from None
        if delay < 0.0:
            raise ctx.err(f"'respawn_delay' must not be negative, got {delay}")
        out["respawn_delay_s"] = delay
        on_exit = self._str(body.get("on_exit", ""), scope, ctx, "on_exit")
        if on_exit not in ("", "shutdown"):
            raise ctx.err(f"'on_exit' supports only 'shutdown', got '{on_exit}'")
        out["shutdown_on_exit"] = on_exit == "shutdown"
        return out

    def _param_entries(self, params, scope: Scope, ctx: _Ctx, prefix: str = "") -> list[tuple[str, Any]]:
        """Flatten a node's param list into ('file', path) and ('value', {name: value}) items."""
        items: list[tuple[str, Any]] = []
        if params is None:
            return items
        if not isinstance(params, list):
            raise ctx.err(f"'param' must be a list, got {type(params).__name__}")
        for p in params:
            if not isinstance(p, dict):
                raise ctx.err(f"each 'param' item is a mapping ({{name, value}} or {{from: file}}), got {p!r}")
            if "from" in p:
                if prefix:
                    raise ctx.err("'param: {from: file}' cannot be nested in a parameter group")
                self._check_param_keys(p, {"from", "allow_substs"}, ctx)
                items.append(("file", self._param_file(p, scope, ctx)))
                continue
            self._check_param_keys(p, {"name", "value", "type", "param"}, ctx)
            if "name" not in p:
                raise ctx.err(f"'param' item needs 'name' or 'from', got keys {sorted(p)}")
            name = prefix + self._str(p["name"], scope, ctx, "name")
            if "param" in p:
                if "value" in p or "type" in p:
                    raise ctx.err(f"parameter group '{name}': 'param' excludes 'value' and 'type'")
                items += self._param_entries(p["param"], scope, ctx, name + ".")
            elif "value" in p:
                type_id = self._str(p["type"], scope, ctx, "type") if "type" in p else None
                if type_id is not None and type_id not in _PARAM_TYPES:
                    raise ctx.err(f"parameter '{name}': unknown type '{type_id}' (ros2 launch knows {', '.join(_PARAM_TYPES)})")
                items.append(("value", {name: self._param_value(p["value"], type_id, scope, _PCtx(ctx, name))}))
            else:
                raise ctx.err(f"parameter '{name}' needs a 'value'")
        return items

    def _check_param_keys(self, p: dict, allowed: set[str], ctx: _Ctx) -> None:
        unknown = sorted(set(p) - allowed)
        if unknown:
            raise ctx.err(f"Unexpected key(s) found in 'param': {unknown} (allowed together: "
                          "name, value, type, param; or from, allow_substs)")

    def _param_file(self, p: dict, scope: Scope, ctx: _Ctx) -> str:
        path = pathlib.Path(self._str(p["from"], scope, ctx, "from"))
        if not path.is_absolute():
            raise ctx.err(f"parameter file '{path}' is relative; ros2 launch resolves it against the working "
                          "directory, not the launch file: write $(find-pkg-share PKG)/... or $(dirname)/...")
        if not path.is_file():
            # ros2 launch only warns and starts the node without it; a missing file is a mistake.
            raise ctx.err(f"parameter file '{path}' does not exist (ros2 launch would warn and skip it)")
        if "allow_substs" in p and self._bool_attr(p["allow_substs"], scope, ctx, "allow_substs"):
            text = substitute(path.read_text(), scope, _Ctx(path, 0))
            fd, out = tempfile.mkstemp(prefix="robot_stack_launch_params_", suffix=".yaml")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            self.plan.temp_files.append(out)
            return out
        return str(path)

    def _param_value(self, value: Any, type_id: str | None, scope: Scope, ctx: "_PCtx") -> Any:
        """A parameter value as ros2 launch types it (launch_ros ParameterValue)."""
        want = _PARAM_TYPES[type_id] if type_id is not None else None
        if value is None:
            raise ctx.err("has a null value (ros2 launch rejects it); write value: '' for an empty string")
        if isinstance(value, dict):
            raise ctx.err("value is a mapping; use a parameter group (name + param: [...]) instead")
        if isinstance(value, list):
            if want is not None and not isinstance(want, tuple):
                raise ctx.err(f"value is a list but type is '{type_id}'")
            item_type = want[1] if want is not None else None
            out = []
            for v in value:
                if isinstance(v, (list, dict)) or v is None:
                    raise ctx.err(f"list items must be strings, numbers or booleans, got {v!r}")
                out.append(self._param_scalar(v, item_type, scope, ctx))
            return _uniform_list(out, item_type, ctx)
        if want is not None and isinstance(want, tuple):  # list_of_* written as one string
            if not isinstance(value, str):
                raise ctx.err(f"type '{type_id}' needs a list, got {value!r}")
            parsed = _yaml_load(substitute(value, scope, ctx), ctx)
            if not isinstance(parsed, list):
                raise ctx.err(f"type '{type_id}' needs a list, got {value!r}")
            return _uniform_list([_check_native(v, want[1], ctx) for v in parsed], want[1], ctx)
        return self._param_scalar(value, want, scope, ctx)

    def _param_scalar(self, value: Any, want: type | None, scope: Scope, ctx: "_PCtx") -> Any:
        if not isinstance(value, str):
            return _check_native(value, want, ctx)
        if want is None:
            # Only text with a substitution is read as YAML; a plain (quoted) literal stays a string.
            return _yaml_value(substitute(value, scope, ctx), ctx) if "$(" in value else value
        text = substitute(value, scope, ctx)
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

    def _e_node(self, body, scope: Scope, ctx: _Ctx) -> None:
        self._check_keys("node", body, _NODE_KEYS, ctx)
        if not self._enabled(body, scope, ctx):
            return
        for req in ("pkg", "exec"):
            if req not in body:
                raise ctx.err(f"'node' needs '{req}'")
        pkg = self._str(body["pkg"], scope, ctx, "pkg")
        exe = self._str(body["exec"], scope, ctx, "exec")
        try:
            cmd = find_executable(pkg, exe)
        except LaunchError as e:
            raise ctx.err(str(e)) from e
        if "args" in body:
            cmd += shlex.split(self._str(body["args"], scope, ctx, "args"))
        ros: list[str] = []
        node_name = self._str(body["name"], scope, ctx, "name") if "name" in body else ""
        if node_name:
            ros += ["-r", f"__node:={node_name}"]
        ns = _join_ns(scope.namespace, self._str(body.get("namespace", ""), scope, ctx, "namespace"))
        if ns:
            ros += ["-r", f"__ns:={ns}"]
        for kind, item in self._param_entries(body.get("param"), scope, ctx):
            if kind == "file":
                ros += ["--params-file", item]
            else:
                ros += ["--params-file", self._inline_params_file(item)]
        for r in body.get("remap", []) or []:
            if not isinstance(r, dict) or set(r) != {"from", "to"}:
                raise ctx.err(f"each 'remap' item needs exactly 'from' and 'to', got {r!r}")
            ros += ["-r", f"{self._str(r['from'], scope, ctx, 'from')}:={self._str(r['to'], scope, ctx, 'to')}"]
        if "ros_args" in body:
            ros += shlex.split(self._str(body["ros_args"], scope, ctx, "ros_args"))
        if ros:
            cmd += ["--ros-args", *ros]
        cmd = self._launch_prefix(body, scope, ctx) + cmd
        label = self._str(body.get("exec_name", ""), scope, ctx, "exec_name") or node_name or exe
        self.plan.processes.append(ProcessSpec(
            name=self._unique(label), cmd=cmd, env=self._env_list(body, scope, ctx),
            where=f"{ctx.file}:{ctx.line}", **self._common_process(body, scope, ctx),
        ))

    def _e_executable(self, body, scope: Scope, ctx: _Ctx) -> None:
        self._check_keys("executable", body, _EXEC_KEYS, ctx)
        if not self._enabled(body, scope, ctx):
            return
        if "cmd" not in body:
            raise ctx.err("'executable' needs 'cmd'")
        cmd = shlex.split(self._str(body["cmd"], scope, ctx, "cmd"))
        if not cmd:
            raise ctx.err("'executable' has an empty 'cmd'")
        if cmd[0] in ("python", "python3"):
            cmd[0] = sys.executable  # the interpreter of this environment, not whatever is on PATH
        name = self._str(body.get("name", ""), scope, ctx, "name") or pathlib.Path(cmd[0]).name
        cmd = self._launch_prefix(body, scope, ctx) + cmd
        cwd = self._str(body["cwd"], scope, ctx, "cwd") if "cwd" in body else None
        self.plan.processes.append(ProcessSpec(
            name=self._unique(name), cmd=cmd, env=self._env_list(body, scope, ctx), cwd=cwd,
            where=f"{ctx.file}:{ctx.line}", is_node=False, **self._common_process(body, scope, ctx),
        ))

    def _launch_prefix(self, body, scope: Scope, ctx: _Ctx) -> list[str]:
        """``launch-prefix``: words put before the command (as ros2 launch does: substituted,
        then split like a shell would), e.g. ``chrt -f 20`` or ``nice -n -5``; empty: none."""
        if "launch-prefix" not in body:
            return []
        text = self._str(body["launch-prefix"], scope, ctx, "launch-prefix")
        try:
            return shlex.split(text)
        except ValueError as e:
            raise ctx.err(f"cannot split launch-prefix {text!r}: {e}") from e

    def _unique(self, name: str) -> str:
        taken = {p.name for p in self.plan.processes}
        if name not in taken:
            return name
        i = 2
        while f"{name}-{i}" in taken:
            i += 1
        return f"{name}-{i}"

    def _inline_params_file(self, params: dict[str, Any]) -> str:
        fd, path = tempfile.mkstemp(prefix="robot_stack_launch_params_", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            # The file goes to one node only, so the wildcard matches exactly that node.
            yaml.safe_dump({"/**": {"ros__parameters": params}}, f)
        self.plan.temp_files.append(path)
        return path


def parse_cli_args(items: list[str]) -> dict[str, str]:
    """``name:=value`` items -> dict; LaunchError for anything else."""
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise LaunchError(f"launch arguments look like name:=value, got '{item}'")
        out[name] = value
    return out


def load_launch(path: str | os.PathLike, cli_args: dict[str, str] | None = None, *, check_unknown_args: bool = True) -> LaunchPlan:
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
    parser = _Parser(cli_args)
    # ros2 launch sets command-line arguments as launch configurations before the file runs;
    # an include's 'arg' overwrites them from there on.
    scope = Scope(configs=dict(cli_args))
    try:
        parser.parse_file(path, scope)
    except LaunchError:
        parser.plan.cleanup()
        raise
    declared = {a.name for a in parser.plan.args}
    unknown = sorted(set(cli_args) - declared)
    if check_unknown_args and unknown:
        parser.plan.cleanup()
        raise LaunchError(f"unknown launch argument '{unknown[0]}' for {path}; declared: {', '.join(sorted(declared)) or 'none'} "
                          "(ros2 launch would silently ignore it; robot_stack's runner refuses it to catch typos)")
    parser.plan.configs = scope.configs
    return parser.plan


def declared_args(path: str | os.PathLike) -> list[ArgDecl]:
    """The ``arg`` entities of a launch file (top level only; for --show-args)."""
    path = pathlib.Path(path)
    data = load_yaml_with_lines(path)
    out = []
    for ent in (data or {}).get("launch", []) or []:
        if isinstance(ent, dict) and "arg" in ent and isinstance(ent["arg"], dict):
            a = ent["arg"]
            choices = [str(c.get("value")) for c in a.get("choice") or [] if isinstance(c, dict)] or None
            out.append(ArgDecl(str(a.get("name")), None if "default" not in a else str(a["default"]),
                               str(a.get("description", "")), choices, path, getattr(a, "line", 0)))
    return out
