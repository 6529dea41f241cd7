"""Launch runner: parsing the YAML launch format, and running real node processes.

Parsing tests need no processes. Running tests start a probe (a plain Python script that
behaves like a node: exits, ignores signals, prints its scheduling) or real rclpy nodes;
the ones whose outcome depends on wall-clock time or on DDS discovery are marked ``timing``
(pytest re-runs only those after a failure).
"""
from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import yaml

from robot_stack.launch import LaunchError, load_launch, parse_cli_args
from robot_stack.testing.launched import params_of

REPO = pathlib.Path(__file__).resolve().parents[1]

TALKER = '''\
#!/usr/bin/env python3
"""Test talker: publishes '<greeting> <i>' on chatter; param fail_after_s > 0: exits 3 then."""
import sys
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String

def main():
    rclpy.init(args=sys.argv)
    node = Node("talker")
    greeting = node.declare_parameter("greeting", "hello").value
    fail_after_s = node.declare_parameter("fail_after_s", 0.0).value
    pub = node.create_publisher(String, "chatter", 10)
    n = [0]
    def tick():
        n[0] += 1
        pub.publish(String(data=f"{greeting} {n[0]}"))
    node.create_timer(0.05, tick)
    if fail_after_s > 0:
        node.create_timer(fail_after_s, lambda: sys.exit(3))
    print(f"talker: ready as {node.get_fully_qualified_name()}", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        print("talker: clean stop", flush=True)
    return 0

sys.exit(main())
'''

LISTENER = '''\
#!/usr/bin/env python3
"""Test listener: prints what it hears on param topic; exits 0 after param exit_after messages (0: never)."""
import sys
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String

def main():
    rclpy.init(args=sys.argv)
    node = Node("listener")
    exit_after = node.declare_parameter("exit_after", 0).value
    topic = node.declare_parameter("topic", "heard").value
    got = [0]
    def on_msg(msg):
        got[0] += 1
        print(f"I heard: {msg.data}", flush=True)
    node.create_subscription(String, topic, on_msg, 10)
    print(f"listener: ready as {node.get_fully_qualified_name()}", flush=True)
    try:
        while rclpy.ok() and (exit_after == 0 or got[0] < exit_after):
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        print("listener: clean stop", flush=True)
        return 0
    print("listener: done", flush=True)
    return 0

sys.exit(main())
'''

PROBE = '''\
#!/usr/bin/env python3
"""Test probe, no ROS: reads its parameters from the --params-file files the runner passes.
exit_after_s > 0: exits with exit_code then; ignore: signal names it ignores; prints its
scheduling policy and nice value at start."""
import os, signal, sys, time
import yaml

argv = sys.argv[sys.argv.index("--ros-args") + 1:] if "--ros-args" in sys.argv else []
params, name = {}, "probe"
for i, a in enumerate(argv):
    if a == "--params-file":
        for section in (yaml.safe_load(open(argv[i + 1])) or {}).values():
            params.update(section["ros__parameters"])
    if a.startswith("__node:="):
        name = a.split(":=", 1)[1]
for s in params.get("ignore", []):
    signal.signal(getattr(signal, s), lambda *_: print(f"{name}: ignoring a signal", flush=True))
stop = []
if "SIGINT" not in params.get("ignore", []):
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
print(f"{name}: started pid {os.getpid()} sched {os.sched_getscheduler(0)} nice {os.nice(0)}", flush=True)
t0 = time.monotonic()
while not stop:
    if 0 < params.get("exit_after_s", 0) <= time.monotonic() - t0:
        print(f"{name}: exiting with {params.get('exit_code', 0)}", flush=True)
        sys.exit(params.get("exit_code", 0))
    time.sleep(0.02)
print(f"{name}: clean stop", flush=True)
'''


@pytest.fixture(scope="module")
def test_pkg(tmp_path_factory):
    """An ament prefix with package 'rs_launch_test' (talker, listener, probe, a params file)."""
    prefix = tmp_path_factory.mktemp("prefix")
    (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (prefix / "share" / "ament_index" / "resource_index" / "packages" / "rs_launch_test").write_text("")
    share = prefix / "share" / "rs_launch_test"
    share.mkdir(parents=True)
    (share / "listener.yaml").write_text(yaml.safe_dump({"/**": {"ros__parameters": {"exit_after": 3}}}))
    lib = prefix / "lib" / "rs_launch_test"
    lib.mkdir(parents=True)
    for name, src in (("talker", TALKER), ("listener", LISTENER), ("probe", PROBE)):
        (lib / name).write_text(src)
        (lib / name).chmod(0o755)
    return prefix


@pytest.fixture
def env(test_pkg, monkeypatch, tmp_path):
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"{test_pkg}{os.pathsep}{os.environ.get('AMENT_PREFIX_PATH', '')}")
    monkeypatch.setenv("ROBOT_STACK_ROOT", str(REPO))
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "ros_log"))
    monkeypatch.delenv("OVERRIDE_LAUNCH_PROCESS_OUTPUT", raising=False)
    return dict(os.environ)


def _write(tmp_path, text, name="test.launch.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


# -------------------------------------------------------------------------------------
# Parsing (no processes)
# -------------------------------------------------------------------------------------

SAMPLE = """\
launch:
  - arg: {name: greeting, default: hello, description: what the talker says}
  - arg: {name: ns, default: demo}
  - let: {name: greeting_loud, value: "$(var greeting)!"}
  - node:
      pkg: rs_launch_test
      exec: talker
      name: my_talker
      namespace: "$(var ns)"
      output: screen
      param:
        - {name: greeting, value: "$(var greeting_loud)"}
        - {name: group.rate, value: "5"}
        - {name: group.gains, value: [1.0, 2.0]}
  - node:
      pkg: rs_launch_test
      exec: listener
      namespace: /abs
      param:
        - from: $(find-pkg-share rs_launch_test)/listener.yaml
  - node:
      if: "false"
      pkg: rs_launch_test
      exec: listener
  - node:
      unless: "true"
      pkg: rs_launch_test
      exec: listener
  - include:
      file: $(dirname)/inner.launch.yaml
      arg:
        - {name: who, value: "$(var ns)-inner"}
"""

INNER = """\
launch:
  - arg: {name: who}
  - node: {pkg: rs_launch_test, exec: probe, name: "$(var who)", output: screen}
"""


def test_parse_sample_with_args_params_substitutions_and_include(tmp_path, env):
    _write(tmp_path, INNER, "inner.launch.yaml")
    plan = load_launch(_write(tmp_path, SAMPLE), parse_cli_args(["greeting:=hola"]))
    try:
        assert [p.name for p in plan.processes] == ["my_talker", "listener", "demo-inner"]
        talker, listener, inner = plan.processes
        cmd = talker.cmd
        assert cmd[0] == sys.executable and cmd[1].endswith("lib/rs_launch_test/talker")
        ros = cmd[cmd.index("--ros-args") + 1:]
        assert ["-r", "__node:=my_talker"] == ros[:2] and "__ns:=/demo" in ros
        files = [ros[i + 1] for i, a in enumerate(ros) if a == "--params-file"]
        params = {}
        for f in files:
            params.update(yaml.safe_load(open(f))["/**"]["ros__parameters"])
        # CLI override reached the 'let'; the quoted literal "5" stays a string (launch_ros).
        assert params == {"greeting": "hola!", "group.rate": "5", "group.gains": [1.0, 2.0]}
        assert talker.output == "screen"
        lros = listener.cmd[listener.cmd.index("--ros-args") + 1:]
        assert "__ns:=/abs" in lros
        assert any(a.endswith("share/rs_launch_test/listener.yaml") for a in lros)
        assert listener.output == "log"
        assert inner.cmd[1].endswith("lib/rs_launch_test/probe") and "__node:=demo-inner" in inner.cmd
    finally:
        plan.cleanup()
    assert not any(os.path.exists(f) for f in plan.temp_files)


@pytest.mark.parametrize(
    "body, pattern",
    [
        ("  - timer: {period: 1.0}\n", r"test.launch.yaml:3: launch entity 'timer' is not supported"),
        ("  - node: {pkg: rs_launch_test, exec: talker, respawn_max_retries: 3}\n", r":3: 'node' attribute 'respawn_max_retries' is not supported"),
        ("  - let: {name: x, value: '$(eval 1 + 1)'}\n", r":3: substitution \$\(eval 1 \+ 1\) is not supported"),
        ("  - node: {pkg: rs_launch_test, exec: nope}\n", r"executable 'nope' of package 'rs_launch_test' not found"),
        ("  - let: {name: x, value: '$(var missing)'}\n", r"launch configuration 'missing' is not set"),
        # Constructs ros2 launch has but our launch files do not use: a clear error, not half support.
        ("  - group: {children: []}\n", r":3: launch entity 'group' is not supported.*supported: arg, let, node, include"),
        ("  - executable: {cmd: 'true'}\n", r"launch entity 'executable' is not supported"),
        ("  - push-ros-namespace: {namespace: a}\n", r"launch entity 'push-ros-namespace' is not supported"),
        ("  - node: {pkg: rs_launch_test, exec: talker, remap: [{from: a, to: b}]}\n", r"'node' attribute 'remap' is not supported"),
        ("  - node: {pkg: rs_launch_test, exec: talker, on_exit: shutdown}\n", r"'node' attribute 'on_exit' is not supported"),
        ("  - let: {name: x, value: '$(env HOME)'}\n", r"substitution \$\(env HOME\) is not supported.*\$\(var NAME\)"),
    ],
)
def test_unsupported_or_bad_constructs_name_construct_and_line(tmp_path, env, body, pattern):
    path = _write(tmp_path, "launch:\n  - arg: {name: a, default: '1'}\n" + body)
    with pytest.raises(LaunchError, match=pattern):
        load_launch(path)


def test_required_and_unknown_args(tmp_path, env):
    path = _write(tmp_path, "launch:\n  - arg: {name: task, description: which task, choice: [{value: peg}, {value: reach}]}\n")
    with pytest.raises(LaunchError, match="'task' is required.*which task.*task:=VALUE"):
        load_launch(path)
    with pytest.raises(LaunchError, match="must be one of"):
        load_launch(path, {"task": "fly"})
    with pytest.raises(LaunchError, match="unknown launch argument 'tsk'.*ros2 launch would silently ignore it"):
        load_launch(path, {"task": "peg", "tsk": "x"})
    assert load_launch(path, {"task": "peg"}).configs["task"] == "peg"
    # The launch configurations ros2 launch itself reads are not "unknown".
    own = {"sigterm_timeout": "30", "sigkill_timeout": "2", "launch-prefix": "nice", "launch-prefix-filter": "x"}
    assert load_launch(path, {"task": "peg", **own}).configs["sigterm_timeout"] == "30"


@pytest.mark.parametrize("item", ["name", ":=x", "name:=", "name=x"])
def test_malformed_command_line_arguments_are_rejected_as_ros2_launch_does(item):
    with pytest.raises(LaunchError, match=rf"malformed launch argument '{re.escape(item)}'"):
        parse_cli_args([item])


def test_command_line_arguments_last_one_wins_and_values_may_hold_colon_equals():
    assert parse_cli_args(["a:=1", "b:=x:=y", "a:=2"]) == {"a": "2", "b": "x:=y"}


# -------------------------------------------------------------------------------------
# Agreement with ros2 launch / launch_ros (values, types, keys, scoping)
# -------------------------------------------------------------------------------------


def _node_params(tmp_path, params_yaml: str, args: dict | None = None, head: str = "") -> dict:
    text = ("launch:\n" + head + "  - node:\n      pkg: rs_launch_test\n      exec: talker\n      param:\n"
            + textwrap.indent(textwrap.dedent(params_yaml), " " * 8))
    plan = load_launch(_write(tmp_path, text), args or {})
    try:
        return params_of(plan.processes[0])
    finally:
        plan.cleanup()


def test_quoted_literals_stay_strings_and_only_substitutions_are_yaml_typed(tmp_path, env):
    head = "  - arg: {name: n, default: '64'}\n  - arg: {name: flag, default: 'true'}\n  - arg: {name: cams, default: '[front]'}\n"
    params = _node_params(tmp_path, """\
        - {name: size, value: "64"}
        - {name: zero, value: "0"}
        - {name: ratio, value: "1.5"}
        - {name: enabled, value: "true"}
        - {name: cams, value: "[front]"}
        - {name: serial, value: "0123"}
        - {name: nested.k, value: "3"}
        - {name: quoted_list, value: ["3", b]}
        - {name: native_int, value: 64}
        - {name: native_float, value: 1.5}
        - {name: native_bool, value: true}
        - {name: native_list, value: [1, 2.5]}
        - {name: sub_int, value: "$(var n)"}
        - {name: sub_bool, value: "$(var flag)"}
        - {name: sub_list, value: "$(var cams)"}
        - {name: sub_text, value: "size_$(var n)"}
    """, head=head)
    assert params == {
        "size": "64", "zero": "0", "ratio": "1.5", "enabled": "true", "cams": "[front]", "serial": "0123",
        "nested.k": "3", "quoted_list": ["3", "b"],
        "native_int": 64, "native_float": 1.5, "native_bool": True, "native_list": [1.0, 2.5],
        "sub_int": 64, "sub_bool": True, "sub_list": ["front"], "sub_text": "size_64",
    }


def test_param_type_attribute_converts_like_launch_ros(tmp_path, env):
    head = "  - arg: {name: serial, default: '138422074005'}\n  - arg: {name: n, default: '7'}\n"
    params = _node_params(tmp_path, """\
        - {name: serial, value: "$(var serial)", type: str}
        - {name: lead_zero, value: "0123", type: str}
        - {name: i, value: "$(var n)", type: int}
        - {name: f, value: "2", type: float}
        - {name: b, value: "true", type: bool}
        - {name: li, value: "[1, 2]", type: list_of_int}
        - {name: lf, value: [1.0, 2.5], type: list_of_float}
        - {name: ls, value: ["$(var n)", b], type: list_of_str}
        - {name: lb, value: "[true, false]", type: list_of_bool}
        - {name: y, value: "$(var n)", type: yaml}
    """, head=head)
    assert params == {"serial": "138422074005", "lead_zero": "0123", "i": 7, "f": 2.0, "b": True,
                      "li": [1, 2], "lf": [1.0, 2.5], "ls": ["7", "b"], "lb": [True, False], "y": 7}
    assert isinstance(params["f"], float)
    # Without type the numeric serial would become an int: that is what type: str prevents.
    assert _node_params(tmp_path, '- {name: s, value: "$(var serial)"}\n', head=head) == {"s": 138422074005}


@pytest.mark.parametrize(
    "item, pattern",
    [
        ('{name: x, value: "abc", type: int}', r"parameter 'x': cannot convert 'abc' to int"),
        ("{name: x, value: 5, type: float}", r"parameter 'x': value 5 \(int\) is not of type float"),
        ('{name: x, value: "1", type: double}', r"parameter 'x': unknown type 'double'"),
        ('{name: x, value: "[1, a]", type: list_of_int}', r"parameter 'x': value 'a' \(str\) is not of type int"),
        ('{name: x, value: "yes please", type: bool}', r"cannot convert 'yes please' to bool"),
        ("{name: x, value: 3, type: list_of_int}", r"type 'list_of_int' needs a list"),
    ],
)
def test_param_type_errors_name_the_parameter(tmp_path, env, item, pattern):
    with pytest.raises(LaunchError, match=pattern):
        _node_params(tmp_path, f"- {item}\n")


@pytest.mark.parametrize(
    "item, pattern",
    [
        ("{name: x, value: 1, typo: 2}", r"Unexpected key\(s\) found in 'param': \['typo'\]"),
        ("{from: /dev/null, name: x}", r"Unexpected key\(s\) found in 'param': \['name'\]"),
        ("{name: x, value: null}", r"parameter 'x': has a null value"),
        ("{name: x, value: [1, a]}", r"parameter 'x': mixed-type list \[1, 'a'\]"),
        ("{name: x, value: [true, 1]}", r"mixed-type list"),
        ("{from: relative/params.yaml}", r"'relative/params.yaml' is relative.*find-pkg-share"),
        ("{from: /nonexistent/params.yaml}", r"does not exist \(ros2 launch would warn and skip it\)"),
        # Not used by our launch files, so not read: parameter groups and allow_substs.
        ("{name: g, param: [{name: k, value: '1'}]}", r"Unexpected key\(s\) found in 'param': \['param'\]"),
        ("{from: /dev/null, allow_substs: true}", r"Unexpected key\(s\) found in 'param': \['allow_substs'\]"),
    ],
)
def test_param_items_rejected_like_ros2_launch(tmp_path, env, item, pattern):
    with pytest.raises(LaunchError, match=pattern):
        _node_params(tmp_path, f"- {item}\n")


def test_arg_choice_upstream_form_and_choices_rejected(tmp_path, env):
    ok = _write(tmp_path, "launch:\n  - arg: {name: t, default: a, choice: [{value: a}, {value: b}]}\n")
    assert load_launch(ok, {"t": "b"}).configs["t"] == "b"
    with pytest.raises(LaunchError, match=r"'t' must be one of \['a', 'b'\], got 'c'"):
        load_launch(ok, {"t": "c"})
    bad = _write(tmp_path, "launch:\n  - arg: {name: t, default: a, choices: [a, b]}\n", "bad.launch.yaml")
    with pytest.raises(LaunchError, match=r"'choices' is not the ros2 launch format.*choice: \[\{value: a\}, \{value: b\}\]"):
        load_launch(bad)


@pytest.mark.parametrize(
    "body, pattern",
    [
        ("  - arg: {name: b, default: 5}\n", r"'default' must be a string, got int 5: quote it: default: '5'"),
        ("  - arg: {name: b, default: true}\n", r"quote it: default: 'true'"),
        ("  - let: {name: b, value: 5}\n", r"quote it: value: '5'"),
        ("  - let: {name: b, value: x, if: true}\n", r"quote it: if: 'true'"),
        ("  - include: {file: $(dirname)/i.launch.yaml, arg: [{name: a, value: 5}]}\n", r"quote it: value: '5'"),
        ("  - include: {file: i.launch.yaml}\n", r"include file 'i.launch.yaml' is relative.*\$\(dirname\)"),
        # respawn is read as a string (then as a YAML bool); the three times as YAML floats.
        ("  - node: {pkg: rs_launch_test, exec: talker, respawn: true}\n", r"quote it: respawn: 'true'"),
        ("  - node: {pkg: rs_launch_test, exec: talker, respawn: 'sometimes'}\n", r"'respawn' must read as a YAML bool"),
        ("  - node: {pkg: rs_launch_test, exec: talker, respawn_delay: 2}\n", r"'respawn_delay' must be a float.*respawn_delay: 2.0"),
        ("  - node: {pkg: rs_launch_test, exec: talker, respawn_delay: '2.0'}\n", r"'respawn_delay' must be a float.*str '2.0'"),
        ("  - node: {pkg: rs_launch_test, exec: talker, respawn_delay: -1.0}\n", r"'respawn_delay' must not be negative"),
        ("  - node: {pkg: rs_launch_test, exec: talker, sigterm_timeout: 30}\n", r"'sigterm_timeout' must be a float.*sigterm_timeout: 30.0"),
        ("  - node: {pkg: rs_launch_test, exec: talker, sigkill_timeout: -2.0}\n", r"'sigkill_timeout' must not be negative"),
    ],
)
def test_constructs_ros2_launch_rejects_are_rejected(tmp_path, env, body, pattern):
    _write(tmp_path, "launch: []\n", "i.launch.yaml")
    with pytest.raises(LaunchError, match=pattern):
        load_launch(_write(tmp_path, "launch:\n  - arg: {name: a, default: '1'}\n" + body))


def test_respawn_and_shutdown_attributes_as_ros2_launch_reads_them(tmp_path, env):
    path = _write(tmp_path, """\
        launch:
          - arg: {name: r, default: "1"}
          - node: {pkg: rs_launch_test, exec: probe, name: a, respawn: "true", respawn_delay: 0.5}
          - node: {pkg: rs_launch_test, exec: probe, name: b, respawn: "$(var r)", sigterm_timeout: 30.0, sigkill_timeout: 1.5}
          - node: {pkg: rs_launch_test, exec: probe, name: c, respawn: "False", namespace: "one/two"}
          - node: {pkg: rs_launch_test, exec: probe, name: d}
        """)
    a, b, c, d = load_launch(path).processes
    assert (a.respawn, a.respawn_delay_s, a.sigterm_timeout_s, a.sigkill_timeout_s) == (True, 0.5, 5.0, 5.0)
    assert (b.respawn, b.respawn_delay_s, b.sigterm_timeout_s, b.sigkill_timeout_s) == (True, 0.0, 30.0, 1.5)
    assert not c.respawn and "__ns:=/one/two" in c.cmd
    assert not d.respawn and d.output == "log"
    # The launch configurations set the timeouts of every node without its own attribute.
    a, b, c, d = load_launch(path, {"sigterm_timeout": "12", "sigkill_timeout": "0.5", "r": "0"}).processes
    assert (a.sigterm_timeout_s, a.sigkill_timeout_s) == (12.0, 0.5) and (b.sigterm_timeout_s, b.sigkill_timeout_s) == (30.0, 1.5)
    assert not b.respawn
    with pytest.raises(LaunchError, match="launch configuration 'sigterm_timeout' must be a number of seconds, got 'soon'"):
        load_launch(path, {"sigterm_timeout": "soon"})
    with pytest.raises(LaunchError, match="'sigkill_timeout' must not be negative"):
        load_launch(path, {"sigkill_timeout": "-1"})


def test_timeouts_set_by_a_launch_file_arg_or_let_and_overridden_on_the_command_line(tmp_path, env):
    path = _write(tmp_path, """\
        launch:
          - arg: {name: sigterm_timeout, default: "30"}
          - let: {name: sigkill_timeout, value: "7"}
          - node: {pkg: rs_launch_test, exec: probe}
        """)
    (p,) = load_launch(path).processes
    assert (p.sigterm_timeout_s, p.sigkill_timeout_s) == (30.0, 7.0)
    (p,) = load_launch(path, {"sigterm_timeout": "3"}).processes
    assert p.sigterm_timeout_s == 3.0


def test_launch_prefix_configuration_filter_and_node_attribute(tmp_path, env):
    """As ros2 launch: a node's own launch-prefix (even an empty one) wins; otherwise the
    launch-prefix configuration applies where launch-prefix-filter matches the executable."""
    path = _write(tmp_path, """\
        launch:
          - node: {pkg: rs_launch_test, exec: talker, name: t}
          - node: {pkg: rs_launch_test, exec: probe, name: p}
          - node: {pkg: rs_launch_test, exec: probe, name: own, launch-prefix: "chrt -f 5"}
          - node: {pkg: rs_launch_test, exec: probe, name: empty, launch-prefix: ""}
        """)
    t, p, own, empty = load_launch(path, {"launch-prefix": "nice -n 3"}).processes
    assert t.cmd[:4] == ["nice", "-n", "3", sys.executable] and p.cmd[:3] == ["nice", "-n", "3"]
    assert own.cmd[:3] == ["chrt", "-f", "5"] and empty.cmd[0] == sys.executable
    t, p, own, empty = load_launch(path, {"launch-prefix": "nice -n 3", "launch-prefix-filter": "pro"}).processes
    assert t.cmd[0] == sys.executable and p.cmd[:3] == ["nice", "-n", "3"] and own.cmd[0] == "chrt"
    with pytest.raises(LaunchError, match="launch-prefix-filter '\\(' is not a regular expression"):
        load_launch(path, {"launch-prefix": "nice", "launch-prefix-filter": "("})


def test_override_launch_process_output_replaces_every_output(tmp_path, env, monkeypatch):
    path = _write(tmp_path, "launch:\n  - node: {pkg: rs_launch_test, exec: probe, output: screen}\n"
                            "  - node: {pkg: rs_launch_test, exec: probe}\n")
    assert [p.output for p in load_launch(path).processes] == ["screen", "log"]
    monkeypatch.setenv("OVERRIDE_LAUNCH_PROCESS_OUTPUT", "both")
    assert [p.output for p in load_launch(path).processes] == ["both", "both"]


def test_includes_are_unscoped_and_include_args_beat_the_command_line(tmp_path, env):
    _write(tmp_path, """\
        launch:
          - arg: {name: x, default: inner_default}
          - let: {name: leaked, value: "from_inner"}
          - node: {pkg: rs_launch_test, exec: probe, name: "inner-$(var x)"}
        """, "inner.launch.yaml")
    path = _write(tmp_path, """\
        launch:
          - arg: {name: x, default: outer_default}
          - node: {pkg: rs_launch_test, exec: probe, name: "before-$(var x)"}
          - include:
              file: $(dirname)/inner.launch.yaml
              arg: [{name: x, value: from_include}]
          - node: {pkg: rs_launch_test, exec: probe, name: "after-$(var x)-$(var leaked)"}
        """)
    plan = load_launch(path, {"x": "cli"})
    assert [p.name for p in plan.processes] == ["before-cli", "inner-from_include", "after-from_include-from_inner"]
    assert plan.configs["leaked"] == "from_inner"
    # Without a command-line value the include's arg still wins over the inner default.
    plan = load_launch(path)
    assert [p.name for p in plan.processes][1] == "inner-from_include"


def test_session_launch_keeps_numeric_camera_serials_as_strings(env):
    plan = load_launch(REPO / "launch" / "session.launch.yaml",
                       {"front_serial": "138422074005", "wrist_serial": "0123"})
    try:
        by_name = {p.name: params_of(p) for p in plan.processes}
        assert by_name["camera_front"]["serial"] == "138422074005"
        assert by_name["camera_wrist"]["serial"] == "0123"
    finally:
        plan.cleanup()


@pytest.mark.parametrize("file, args", [("sim.launch.yaml", {}), ("session.launch.yaml", {}), ("learner.launch.yaml", {})])
def test_our_launch_files_respawn_only_learner_monitor_and_cameras(env, file, args):
    """The learner (it resumes from run_dir), the monitor and the cameras come back after a
    crash; the franka node, actor, SpaceMouse and sim world do not (a crash there must stop the
    session, with the arm stopped)."""
    plan = load_launch(REPO / "launch" / file, args)
    try:
        respawning = {p.name for p in plan.processes if p.respawn}
        expected = {"learner", "monitor", "camera_front", "camera_wrist"} & {p.name for p in plan.processes}
        assert respawning == expected and "learner" in respawning
        assert all(p.respawn_delay_s == 2.0 for p in plan.processes if p.respawn)
        by_name = {p.name: p for p in plan.processes}
        # The learner writes a checkpoint on Ctrl-C: it gets 30 s before SIGTERM everywhere.
        assert by_name["learner"].sigterm_timeout_s == 30.0
        if file == "session.launch.yaml":
            assert {"franka", "actor", "spacemouse"} <= set(by_name) and by_name["franka"].sigterm_timeout_s == 5.0
    finally:
        plan.cleanup()


def test_sim_launch_gives_every_node_its_sigterm_timeout_unless_told_otherwise(env):
    plan = load_launch(REPO / "launch" / "sim.launch.yaml")
    assert {p.sigterm_timeout_s for p in plan.processes} == {30.0}
    plan.cleanup()
    plan = load_launch(REPO / "launch" / "sim.launch.yaml", parse_cli_args(["sigterm_timeout:=8", "run_learner:=false"]))
    assert {p.sigterm_timeout_s for p in plan.processes} == {8.0} and "learner" not in {p.name for p in plan.processes}
    plan.cleanup()


# -------------------------------------------------------------------------------------
# Running real processes
# -------------------------------------------------------------------------------------


_RUNNERS: list = []


@pytest.fixture(autouse=True)
def _stop_runners_left_running():
    """A failed test must not leave a launch (and its nodes) running: SIGINT, then wait; and
    whatever the runner started is killed (each child is its own process group), so a runner
    that had to be killed leaves no orphans."""
    yield
    while _RUNNERS:
        r = _RUNNERS.pop()
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGINT)
            try:
                r.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                r.proc.kill()
        for line in list(r.lines):
            m = re.search(r"\[launch\] started '[^']+' \(pid (\d+)\)", line)
            if m:
                try:
                    os.killpg(int(m.group(1)), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass  # ended, as it should have


class Runner:
    """The launch CLI in a subprocess, its output collected line by line (with arrival times)."""

    def __init__(self, args, env, cwd=REPO):
        _RUNNERS.append(self)
        self.proc = subprocess.Popen([sys.executable, "-m", "robot_stack.launch", *map(str, args)], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.times: list[float] = []
        self._cond = threading.Condition()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self.times.append(time.monotonic())
                self._cond.notify_all()

    def count(self, text) -> int:
        with self._cond:
            return sum(text in ln for ln in self.lines)

    def wait_line(self, text, timeout_s=30.0, n=1):
        with self._cond:
            ok = self._cond.wait_for(lambda: sum(text in ln for ln in self.lines) >= n, timeout=timeout_s)
        assert ok, f"'{text}' not {n} time(s) in output within {timeout_s} s:\n" + "\n".join(self.lines)

    def time_of(self, text, n=1) -> float:
        """Arrival time of the n-th line containing ``text``."""
        with self._cond:
            hits = [t for ln, t in zip(self.lines, self.times) if text in ln]
        return hits[n - 1]

    def finish(self, timeout_s=40.0):
        rc = self.proc.wait(timeout=timeout_s)  # on a timeout the fixture stops it and its children
        self._t.join(timeout=5)
        return rc, "\n".join(self.lines)


def _probe(name, output="screen", **params) -> str:
    """A probe node entity (YAML text) with the given parameters and attributes."""
    attrs = {k: v for k, v in params.items() if k in ("respawn", "respawn_delay", "sigterm_timeout", "sigkill_timeout")}
    param = [{"name": k, "value": v} for k, v in params.items() if k not in attrs]
    body = {"pkg": "rs_launch_test", "exec": "probe", "name": name, "output": output, **attrs}
    if param:
        body["param"] = param
    return "  - " + yaml.safe_dump({"node": body}, default_flow_style=True, width=1000)


TALK_LISTEN = """\
launch:
  - arg: {name: greeting, default: hello}
  - node:
      pkg: rs_launch_test
      exec: talker
      namespace: demo
      output: screen
      param: [{name: greeting, value: "$(var greeting)"}]
  - node:
      pkg: rs_launch_test
      exec: listener
      namespace: demo
      output: screen
      param: [{from: "$(find-pkg-share rs_launch_test)/listener.yaml"}, {name: topic, value: chatter}]
"""


@pytest.mark.timing  # DDS discovery between two processes, within the waits
def test_talker_listener_prefixed_output_arg_override_and_clean_exit(tmp_path, env):
    r = Runner([_write(tmp_path, TALK_LISTEN), "greeting:=hola"], env)
    # The listener exits 0 after three messages: it just ends, the launch runs on.
    r.wait_line("'listener' exited with status 0")
    assert r.proc.poll() is None
    r.proc.send_signal(signal.SIGINT)
    rc, out = r.finish()
    assert rc == 0, out
    assert "[listener] listener: ready as /demo/listener" in out
    assert "[listener] I heard: hola" in out  # CLI override -> param; both in namespace demo
    assert "[listener] listener: done" in out
    # Ctrl-C stopped the talker with SIGINT, and it stopped cleanly.
    assert "[talker] talker: clean stop" in out
    assert "'talker' exited with status 0" in out


@pytest.mark.timing  # DDS discovery between two processes, within the wait
def test_sigint_to_runner_is_forwarded_and_exit_is_clean(tmp_path, env):
    text = TALK_LISTEN.replace('{from: "$(find-pkg-share rs_launch_test)/listener.yaml"}, ', "")
    assert "listener.yaml" not in text
    r = Runner([_write(tmp_path, text)], env)
    r.wait_line("[listener] I heard: hello")
    r.proc.send_signal(signal.SIGINT)
    rc, out = r.finish()
    assert rc == 0, out
    assert "[talker] talker: clean stop" in out and "[listener] listener: clean stop" in out
    assert "SIGKILL" not in out and "SIGTERM" not in out


@pytest.mark.timing  # the listener must be up within the talker's 1 s before it fails
def test_node_exiting_non_zero_fails_the_launch(tmp_path, env):
    text = TALK_LISTEN.replace('[{name: greeting, value: "$(var greeting)"}]',
                               '[{name: greeting, value: "$(var greeting)"}, {name: fail_after_s, value: 1.0}]')
    text = text.replace('{from: "$(find-pkg-share rs_launch_test)/listener.yaml"}, ', "")
    assert "fail_after_s" in text and "listener.yaml" not in text
    r = Runner([_write(tmp_path, text)], env)
    rc, out = r.finish()
    assert rc == 1, out
    assert "'talker' exited with status 3" in out
    assert "failed: stopping the launch" in out
    assert "[listener] listener: clean stop" in out  # the others were stopped with SIGINT


def test_real_spacemouse_node_bad_parameter_fails_launch_with_its_name(tmp_path, env):
    text = """\
    launch:
      - node:
          pkg: robot_stack
          exec: spacemouse_node
          name: spacemouse
          param:
            - from: $(find-pkg-share robot_stack)/config/spacemouse.yaml
            - {name: backend, value: fake}
            - {name: hid_provider, value: "robot_stack.testing.spacemouse:scripted_hid_device"}
            - {name: intervention.hold_sec, value: 1.0}
    """
    r = Runner([_write(tmp_path, text)], env)
    rc, out = r.finish()
    assert rc == 1, out
    assert "[spacemouse] error:" in out and "unknown parameter 'intervention.hold_sec'" in out
    assert "'spacemouse' exited with status 2" in out


def test_cli_errors_and_show_args(tmp_path, env):
    path = _write(tmp_path, "launch:\n  - arg: {name: task, default: peg, description: which task}\n  - timer: {}\n")
    out = subprocess.run([sys.executable, "-m", "robot_stack.launch", str(path), "--show-args"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "'task'" in out.stdout and "which task" in out.stdout and "peg" in out.stdout
    out = subprocess.run([sys.executable, "-m", "robot_stack.cli", "launch", str(path)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "test.launch.yaml:3: launch entity 'timer' is not supported" in out.stderr


def _cli(args, env, timeout=60):
    return subprocess.run([sys.executable, "-m", "robot_stack.launch", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_show_args_lists_included_args_and_marks_conditional_ones_as_ros2_launch_does(env):
    out = _cli(["-s", REPO / "launch" / "session.launch.yaml"], env)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("Arguments (pass arguments as '<name>:=<value>'):")
    assert "\n    'robot_ip':\n        Franka FCI address\n        (default: '172.16.0.2')" in text
    # utd_ratio comes from learner.launch.yaml, included only if run_learner: marked *.
    assert "\n    'utd_ratio':*\n" in text and "* argument(s) which are only used if specific conditions occur" in text
    assert text.count("'run_dir':") == 1  # declared in both files: listed once (the first)
    out = _cli(["--show-arguments", REPO / "launch" / "sim.launch.yaml"], env)
    assert "Valid choices are: ['franky', 'direct']" in out.stdout and "*" not in out.stdout
    assert "'sigterm_timeout':" in out.stdout
    assert _cli(["-s", "-p", REPO / "launch" / "sim.launch.yaml"], env).returncode == 2  # exclusive, as in ros2 launch


def test_print_shows_commands_parameters_and_timeouts_without_starting(tmp_path, env):
    out = _cli(["-p", REPO / "launch" / "sim.launch.yaml", "task:=peg_insertion", "sigkill_timeout:=2"], env)
    assert out.returncode == 0, out.stderr
    assert "[launch] started" not in out.stdout
    assert re.search(r"^\[learner\] \S+python\S* \S+/learner_node --ros-args -r __node:=learner", out.stdout, re.M)
    assert "output: screen, respawn: True (delay 2 s), sigterm_timeout: 30 s, sigkill_timeout: 2 s" in out.stdout
    assert "param spec_file: '" in out.stdout and "peg_insertion_front_64.json'" in out.stdout
    assert "params from " in out.stdout and "config/sim_peg_insertion.yaml" in out.stdout


def test_launch_prefix_filter_needs_launch_prefix(tmp_path, env):
    out = _cli(["--launch-prefix-filter", "x", REPO / "launch" / "sim.launch.yaml"], env)
    assert out.returncode == 2 and "--launch-prefix must be specified" in out.stderr


def test_respawning_node_is_restarted_after_its_delay_and_never_ends_the_launch(tmp_path, env):
    """It exits with 3 every 0.3 s: without respawn that would fail the launch (rc 1)."""
    path = _write(tmp_path, "launch:\n" + _probe("flaky", exit_after_s=0.3, exit_code=3, respawn="true", respawn_delay=0.5))
    r = Runner([path], env)
    r.wait_line("[launch] started 'flaky'", n=3)
    assert r.proc.poll() is None, "the launch ended although its node respawns"
    for n in (1, 2):  # the delay is honoured (a lower bound: robust to a slow machine)
        gap = r.time_of("[launch] started 'flaky'", n + 1) - r.time_of("'flaky' exited with status 3", n)
        assert gap >= 0.45, f"restarted {gap:.2f} s after its exit, respawn_delay is 0.5 s"
    r.proc.send_signal(signal.SIGINT)
    rc, out = r.finish()
    assert rc == 0, out
    assert "respawning 'flaky' in 0.5 s" in out and "failed" not in out


def test_no_respawn_once_the_launch_shuts_down(tmp_path, env):
    """A respawning node that stops on the shutdown's SIGINT, and one waiting for its respawn
    delay, are not started again: the launch ends promptly."""
    path = _write(tmp_path, "launch:\n" + _probe("steady", respawn="true")
                  + _probe("waiting", exit_after_s=0.2, respawn="true", respawn_delay=60.0))
    r = Runner([path], env)
    r.wait_line("respawning 'waiting' in 60 s")
    r.wait_line("[steady] steady: started")
    r.proc.send_signal(signal.SIGINT)
    rc, out = r.finish(timeout_s=30)
    assert rc == 0, out
    assert "[steady] steady: clean stop" in out and "'steady' exited with status 0" in out
    assert r.count("[launch] started 'steady'") == 1 and r.count("[launch] started 'waiting'") == 1, out
    assert r.count("respawning") == 1, out


@pytest.mark.timing  # asserts how long the escalation took (wall clock)
def test_sigterm_timeout_from_the_command_line_escalates_to_sigterm(tmp_path, env):
    path = _write(tmp_path, "launch:\n" + _probe("stubborn", ignore=["SIGINT"]))
    r = Runner([path, "sigterm_timeout:=1.0"], env)
    r.wait_line("[stubborn] stubborn: started")
    r.proc.send_signal(signal.SIGINT)
    rc, out = r.finish()
    assert rc == 0, out
    assert "[stubborn] stubborn: ignoring a signal" in out
    m = re.search(r"'stubborn' still running ([0-9.]+) s after SIGINT: sending SIGTERM", out)
    assert m and 1.0 <= float(m.group(1)) < 4.0, out  # the default would be 5 s
    assert "'stubborn' exited with signal SIGTERM" in out and "SIGKILL" not in out


def test_node_timeouts_escalate_to_sigkill_and_a_second_ctrl_c_skips_ahead(tmp_path, env):
    path = _write(tmp_path, "launch:\n"
                  + _probe("deaf", ignore=["SIGINT", "SIGTERM"], sigterm_timeout=0.2, sigkill_timeout=0.2)
                  + _probe("slow", ignore=["SIGINT"]))
    r = Runner([path, "sigterm_timeout:=60"], env)
    r.wait_line("[deaf] deaf: started")
    r.wait_line("[slow] slow: started")
    r.proc.send_signal(signal.SIGINT)
    r.wait_line("'deaf' exited with signal SIGKILL")  # its own 0.2 + 0.2 s, not the 60 s
    assert r.proc.poll() is None and r.count("'slow' exited") == 0  # slow waits for its 60 s
    r.proc.send_signal(signal.SIGINT)  # a second Ctrl-C: next signal now
    rc, out = r.finish(timeout_s=30)
    assert rc == 0, out
    assert "'deaf' still running" in out and "sending SIGKILL" in out
    assert "'slow' exited with signal SIGTERM" in out


def test_show_all_output_and_debug(tmp_path, env):
    path = _write(tmp_path, "launch:\n" + _probe("quiet", output="log", exit_after_s=0.1))
    rc, out = Runner([path], env).finish()
    assert rc == 0 and "[quiet] quiet: started" not in out, out
    logs = list((tmp_path / "ros_log").glob("launch-*/quiet.log"))
    assert logs and "quiet: started" in logs[0].read_text()  # output: log goes to the log file
    rc, out = Runner(["-a", "--debug", path], env).finish()
    assert rc == 0 and "[quiet] quiet: started" in out, out
    assert re.search(r"\[launch\] debug: 'quiet': \S+ \S+/probe --ros-args -r __node:=quiet --params-file \S+ "
                     r"\(output: both, respawn: False, sigterm_timeout 5 s, sigkill_timeout 5 s\)", out), out


def test_device_nodes_start_from_config_files_and_stop_on_sigint(tmp_path, env):
    pytest.importorskip("pyrealsense2")
    import numpy as np

    from robot_stack.testing.realsense_recording import write_software_recording

    rec = write_software_recording(tmp_path / "cam.db3", [np.zeros((48, 64, 3), np.uint8)] * 5, fps=30)
    (tmp_path / "sm.yaml").write_text(yaml.safe_dump({"/**/spacemouse": {"ros__parameters": {"publish_rate_hz": 25.0}}}))
    text = f"""\
    launch:
      - node:
          pkg: robot_stack
          exec: spacemouse_node
          name: spacemouse
          namespace: robot_stack
          output: screen
          param:
            - from: $(find-pkg-share robot_stack)/config/spacemouse.yaml
            - from: {tmp_path}/sm.yaml
            - {{name: backend, value: fake}}
            - {{name: hid_provider, value: "robot_stack.testing.spacemouse:scripted_hid_device"}}
      - node:
          pkg: robot_stack
          exec: camera_node
          name: camera_front
          namespace: robot_stack
          output: screen
          param:
            - from: $(find-pkg-share robot_stack)/config/camera.yaml
            - {{name: backend, value: file}}
            - {{name: file_path, value: "{rec}"}}
            - {{name: crop, value: [8, 0, 48, 48]}}
    """
    r = Runner([_write(tmp_path, text)], env)
    # The namespaced node matched '/**/spacemouse' in both files (25 Hz came from the second).
    r.wait_line("publishing /robot_stack/operator at 25 Hz")
    r.wait_line("SpaceMouse connected")
    r.wait_line("camera 'front' connected, output 128x128")  # output size from config/camera.yaml
    r.proc.send_signal(signal.SIGINT)
    rc, out = r.finish()
    assert rc == 0, out
    assert "'spacemouse' exited with status 0" in out and "'camera_front' exited with status 0" in out, out


def test_camera_node_with_impossible_crop_exits_with_the_reason(tmp_path, env):
    pytest.importorskip("pyrealsense2")
    import numpy as np

    from robot_stack.testing.realsense_recording import write_software_recording

    rec = write_software_recording(tmp_path / "cam.db3", [np.zeros((48, 64, 3), np.uint8)] * 3, fps=30)
    text = f"""\
    launch:
      - node:
          pkg: robot_stack
          exec: camera_node
          param:
            - from: $(find-pkg-share robot_stack)/config/camera.yaml
            - {{name: backend, value: file}}
            - {{name: file_path, value: "{rec}"}}
    """
    rc, out = Runner([_write(tmp_path, text)], env).finish()
    assert rc == 1, out
    assert "crop [80, 0, 480, 480] exceeds the capture size 64x48" in out
    assert "'camera_node' exited with status 2" in out


def test_children_run_at_normal_priority_even_if_the_runner_is_real_time(tmp_path, env):
    """franky.Robot() raises its caller to SCHED_FIFO 99; a runner in that state must not
    hand real-time priority to every node (one busy node would starve the machine)."""
    import io

    from robot_stack.launch.runner import LaunchRunner

    plan = load_launch(_write(tmp_path, "launch:\n" + _probe("probe", exit_after_s=0.1)), parse_cli_args([]))
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        pytest.skip("needs permission to set real-time scheduling (CI runs as root)")
    buf = io.StringIO()
    try:
        rc = LaunchRunner(plan, out=buf, log_dir=tmp_path).run()
    finally:
        os.sched_setscheduler(0, *before)
        plan.cleanup()
    out = buf.getvalue()
    assert rc == 0, out
    assert f"sched {os.SCHED_OTHER} " in out, out


def test_launch_prefix_goes_before_the_command_as_in_ros2_launch(tmp_path, env):
    """launch-prefix on a node, and --launch-prefix on the command line: substituted, split
    like a shell, put before the command; an empty one adds nothing (session.launch.yaml's
    rt_prefix default)."""
    text = textwrap.dedent("""
        launch:
          - arg: {name: prefix, default: ""}
          - node: {pkg: rs_launch_test, exec: talker, name: plain, launch-prefix: "$(var prefix)"}
          - node: {pkg: rs_launch_test, exec: talker, name: niced, launch-prefix: "nice -n '5'"}
    """)
    plan = load_launch(_write(tmp_path, text), parse_cli_args([]))
    try:
        plain, niced = plan.processes
        assert plain.cmd[0] == sys.executable
        assert niced.cmd[:4] == ["nice", "-n", "5", sys.executable]
    finally:
        plan.cleanup()
    path = _write(tmp_path, "launch:\n" + _probe("shown", exit_after_s=0.1), "p.launch.yaml")
    rc, out = Runner(["--launch-prefix", "nice -n 7", path], env).finish()
    assert rc == 0, out
    m = re.search(r"\[shown\] shown: started pid \d+ sched \d+ nice (\d+)", out)
    assert m and int(m.group(1)) == min(19, os.nice(0) + 7), out  # the prefix really ran the command


@pytest.mark.timing  # a real learner node starting twice (torch, DDS) within the waits
@pytest.mark.slow
def test_learner_launch_respawns_a_killed_learner_which_resumes(tmp_path, env):
    """learner.launch.yaml as shipped: SIGKILL the learner, and it comes back 2 s later from
    the same run_dir; the launch itself runs on and stops cleanly on Ctrl-C."""
    r = Runner([REPO / "launch" / "learner.launch.yaml", f"run_dir:={tmp_path / 'run'}", "device:=cpu",
                f"spec_file:={REPO / 'policies' / 'specs' / 'reach_front_64.json'}"], env)
    r.wait_line("[learner] ", timeout_s=120)
    r.wait_line("learner in ", timeout_s=120)
    pid = int(re.search(r"started 'learner' \(pid (\d+)\)", "\n".join(r.lines)).group(1))
    os.kill(pid, signal.SIGKILL)
    r.wait_line("'learner' exited with signal SIGKILL")
    r.wait_line("respawning 'learner' in 2 s")
    r.wait_line("learner in ", n=2, timeout_s=120)
    assert r.proc.poll() is None
    r.proc.send_signal(signal.SIGINT)
    rc, out = r.finish(timeout_s=90)
    assert rc == 0, out
    assert r.count("[launch] started 'learner'") == 2 and r.count("[launch] started 'monitor'") == 1, out
    assert "'learner' exited with status 0" in out and "'monitor' exited with status 0" in out, out
