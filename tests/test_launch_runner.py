"""Launch runner: parsing the YAML launch format, and running real node processes."""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
import yaml

from robot_stack.launch import LaunchError, load_launch, parse_cli_args

REPO = pathlib.Path(__file__).resolve().parents[1]

TALKER = '''\
#!/usr/bin/env python3
"""Test talker: publishes '<greeting> <i>' on chatter; --fail-after S exits 3 after S seconds."""
import sys
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String

def main():
    rclpy.init(args=sys.argv)
    node = Node("talker")
    greeting = node.declare_parameter("greeting", "hello").value
    pub = node.create_publisher(String, "chatter", 10)
    n = [0]
    def tick():
        n[0] += 1
        pub.publish(String(data=f"{greeting} {n[0]}"))
    node.create_timer(0.05, tick)
    if "--fail-after" in sys.argv:
        delay = float(sys.argv[sys.argv.index("--fail-after") + 1])
        node.create_timer(delay, lambda: sys.exit(3))
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
"""Test listener: prints what it hears on 'heard'; exits 0 after param exit_after messages (0: never)."""
import sys
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String

def main():
    rclpy.init(args=sys.argv)
    node = Node("listener")
    exit_after = node.declare_parameter("exit_after", 0).value
    got = [0]
    def on_msg(msg):
        got[0] += 1
        print(f"I heard: {msg.data}", flush=True)
    node.create_subscription(String, "heard", on_msg, 10)
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


@pytest.fixture(scope="module")
def test_pkg(tmp_path_factory):
    """An ament prefix with package 'rs_launch_test' (talker, listener, a params file)."""
    prefix = tmp_path_factory.mktemp("prefix")
    (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (prefix / "share" / "ament_index" / "resource_index" / "packages" / "rs_launch_test").write_text("")
    share = prefix / "share" / "rs_launch_test"
    share.mkdir(parents=True)
    (share / "listener.yaml").write_text(yaml.safe_dump({"/**": {"ros__parameters": {"exit_after": 3}}}))
    lib = prefix / "lib" / "rs_launch_test"
    lib.mkdir(parents=True)
    for name, src in (("talker", TALKER), ("listener", LISTENER)):
        (lib / name).write_text(src)
        (lib / name).chmod(0o755)
    return prefix


@pytest.fixture
def env(test_pkg, monkeypatch):
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"{test_pkg}{os.pathsep}{os.environ.get('AMENT_PREFIX_PATH', '')}")
    monkeypatch.setenv("ROBOT_STACK_ROOT", str(REPO))
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
  - group:
      children:
        - push-ros-namespace: {namespace: "$(var ns)"}
        - node:
            pkg: rs_launch_test
            exec: talker
            name: my_talker
            output: screen
            args: "--fail-after 9"
            param:
              - {name: greeting, value: "$(var greeting_loud)"}
              - name: group
                param:
                  - {name: rate, value: "5"}
                  - {name: gains, value: [1.0, 2.0]}
            env:
              - {name: TALKER_MODE, value: "$(env RS_TEST_MODE fast)"}
  - node:
      pkg: rs_launch_test
      exec: listener
      namespace: /abs
      param:
        - from: $(find-pkg-share rs_launch_test)/listener.yaml
      remap:
        - {from: heard, to: /demo/chatter}
      ros_args: "--log-level warn"
  - node:
      if: "false"
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
  - executable: {cmd: "python -c 'print(1)'", name: "$(var who)", output: screen}
"""


def test_parse_sample_with_args_params_remaps_substitutions(tmp_path, env):
    _write(tmp_path, INNER, "inner.launch.yaml")
    plan = load_launch(_write(tmp_path, SAMPLE), parse_cli_args(["greeting:=hola"]))
    try:
        assert [p.name for p in plan.processes] == ["my_talker", "listener", "demo-inner"]
        talker, listener, inner = plan.processes
        cmd = talker.cmd
        assert cmd[0] == sys.executable and cmd[1].endswith("lib/rs_launch_test/talker")
        assert cmd[2:4] == ["--fail-after", "9"]
        ros = cmd[cmd.index("--ros-args") + 1:]
        assert ["-r", "__node:=my_talker"] == ros[:2] and "__ns:=/demo" in ros
        files = [ros[i + 1] for i, a in enumerate(ros) if a == "--params-file"]
        params = {}
        for f in files:
            params.update(yaml.safe_load(open(f))["/**"]["ros__parameters"])
        # CLI override reached the 'let'; the quoted literal "5" stays a string (launch_ros).
        assert params == {"greeting": "hola!", "group.rate": "5", "group.gains": [1.0, 2.0]}
        assert talker.env == {"TALKER_MODE": "fast"} and talker.output == "screen"
        lros = listener.cmd[listener.cmd.index("--ros-args") + 1:]
        assert "__ns:=/abs" in lros and "heard:=/demo/chatter" in lros
        assert lros[-2:] == ["--log-level", "warn"]
        assert any(a.endswith("share/rs_launch_test/listener.yaml") for a in lros)
        assert listener.output == "log" and listener.is_node and not inner.is_node
        assert inner.cmd == [sys.executable, "-c", "print(1)"]
    finally:
        plan.cleanup()
    assert not any(os.path.exists(f) for f in plan.temp_files)


@pytest.mark.parametrize(
    "body, pattern",
    [
        ("  - timer: {period: 1.0}\n", r"test.launch.yaml:3: launch entity 'timer' is not supported"),
        ("  - node: {pkg: rs_launch_test, exec: talker, respawn_max_retries: '3'}\n", r":3: 'node' attribute 'respawn_max_retries' is not supported"),
        ("  - let: {name: x, value: '$(eval 1 + 1)'}\n", r":3: substitution \$\(eval ...\) is not supported"),
        ("  - node: {pkg: rs_launch_test, exec: nope}\n", r"executable 'nope' of package 'rs_launch_test' not found"),
        ("  - let: {name: x, value: '$(var missing)'}\n", r"launch configuration 'missing' is not set"),
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


# -------------------------------------------------------------------------------------
# Agreement with ros2 launch / launch_ros (values, types, keys, scoping)
# -------------------------------------------------------------------------------------


def _params_of(proc) -> dict:
    """The parameters a process gets, merged over its --params-file files in order."""
    out: dict = {}
    for i, a in enumerate(proc.cmd):
        if a == "--params-file":
            for section in (yaml.safe_load(open(proc.cmd[i + 1])) or {}).values():
                out.update(section["ros__parameters"])
    return out


def _node_params(tmp_path, params_yaml: str, args: dict | None = None, head: str = "") -> dict:
    text = ("launch:\n" + head + "  - node:\n      pkg: rs_launch_test\n      exec: talker\n      param:\n"
            + textwrap.indent(textwrap.dedent(params_yaml), " " * 8))
    plan = load_launch(_write(tmp_path, text), args or {})
    try:
        return _params_of(plan.processes[0])
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
        - {name: nested, param: [{name: k, value: "3"}]}
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
    ],
)
def test_param_items_rejected_like_ros2_launch(tmp_path, env, item, pattern):
    with pytest.raises(LaunchError, match=pattern):
        _node_params(tmp_path, f"- {item}\n")


def test_param_file_allow_substs(tmp_path, env):
    pfile = tmp_path / "p.yaml"
    pfile.write_text("/**:\n  ros__parameters:\n    rate: $(var rate)\n    where: $(var rate)_hz\n")
    head = "  - arg: {name: rate, default: '30'}\n"
    subst = _node_params(tmp_path, f"- {{from: {pfile}, allow_substs: true}}\n", head=head)
    assert subst == {"rate": 30, "where": "30_hz"}
    raw = _node_params(tmp_path, f"- {{from: {pfile}, allow_substs: false}}\n", head=head)
    assert raw == {"rate": "$(var rate)", "where": "$(var rate)_hz"}


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
        ("  - let: {name: x, value: '$(optenv HOME)'}\n", r"Unknown substitution: optenv.*\$\(env HOME DEFAULT\)"),
        ("  - set-env: {name: X, value: '1'}\n", r"entity 'set-env' is not supported.*spells it 'set_env'"),
        ("  - log: {message: hi, level: warn}\n", r"'log' attribute 'level' is not supported"),
        ("  - arg: {name: b, default: 5}\n", r"'default' must be a string, got int 5: quote it: default: '5'"),
        ("  - arg: {name: b, default: true}\n", r"quote it: default: 'true'"),
        ("  - let: {name: b, value: 5}\n", r"quote it: value: '5'"),
        ("  - log: {message: hi, if: true}\n", r"quote it: if: 'true'"),
        ("  - include: {file: $(dirname)/i.launch.yaml, arg: [{name: a, value: 5}]}\n", r"quote it: value: '5'"),
        ("  - include: {file: i.launch.yaml}\n", r"include file 'i.launch.yaml' is relative.*\$\(dirname\)"),
        ("  - executable: {cmd: 'true', respawn_delay: 2}\n", r"'respawn_delay' must be a float.*respawn_delay: 2.0"),
    ],
)
def test_constructs_ros2_launch_rejects_are_rejected(tmp_path, env, body, pattern):
    _write(tmp_path, "launch: []\n", "i.launch.yaml")
    with pytest.raises(LaunchError, match=pattern):
        load_launch(_write(tmp_path, "launch:\n  - arg: {name: a, default: '1'}\n" + body))


def test_accepted_spellings_and_typed_attributes(tmp_path, env):
    path = _write(tmp_path, """\
        launch:
          - set_env: {name: RS_X, value: "1"}
          - push-ros-namespace: {namespace: one}
          - push_ros_namespace: {namespace: two}
          - executable: {cmd: 'true', respawn: true, respawn_delay: 0.5}
          - node: {pkg: rs_launch_test, exec: talker, respawn: "false"}
        """)
    plan = load_launch(path)
    exe, node = plan.processes
    assert exe.respawn and exe.respawn_delay_s == 0.5 and exe.env == {"RS_X": "1"}
    assert not node.respawn and "__ns:=/one/two" in node.cmd


def test_includes_are_unscoped_and_include_args_beat_the_command_line(tmp_path, env):
    _write(tmp_path, """\
        launch:
          - arg: {name: x, default: inner_default}
          - let: {name: leaked, value: "from_inner"}
          - executable: {cmd: 'true', name: "inner-$(var x)"}
        """, "inner.launch.yaml")
    _write(tmp_path, """\
        launch:
          - let: {name: scoped_only, value: "yes"}
        """, "scoped.launch.yaml")
    path = _write(tmp_path, """\
        launch:
          - arg: {name: x, default: outer_default}
          - executable: {cmd: 'true', name: "before-$(var x)"}
          - include:
              file: $(dirname)/inner.launch.yaml
              arg: [{name: x, value: from_include}]
          - executable: {cmd: 'true', name: "after-$(var x)-$(var leaked)"}
          - group:
              children:
                - include: {file: $(dirname)/scoped.launch.yaml}
        """)
    plan = load_launch(path, {"x": "cli"})
    assert [p.name for p in plan.processes] == ["before-cli", "inner-from_include", "after-from_include-from_inner"]
    assert "scoped_only" not in plan.configs and plan.configs["leaked"] == "from_inner"
    # Without a command-line value the include's arg still wins over the inner default.
    plan = load_launch(path)
    assert [p.name for p in plan.processes][1] == "inner-from_include"


def test_session_launch_keeps_numeric_camera_serials_as_strings(env):
    plan = load_launch(REPO / "launch" / "session.launch.yaml",
                       {"front_serial": "138422074005", "wrist_serial": "0123"})
    try:
        by_name = {p.name: _params_of(p) for p in plan.processes}
        assert by_name["camera_front"]["serial"] == "138422074005"
        assert by_name["camera_wrist"]["serial"] == "0123"
    finally:
        plan.cleanup()


# -------------------------------------------------------------------------------------
# Running real processes
# -------------------------------------------------------------------------------------


_RUNNERS: list = []


@pytest.fixture(autouse=True)
def _stop_runners_left_running():
    """A failed test must not leave a launch (and its nodes) running: SIGINT, then wait."""
    yield
    while _RUNNERS:
        r = _RUNNERS.pop()
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGINT)
            try:
                r.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                r.proc.kill()


class Runner:
    """The launch CLI in a subprocess, its output collected line by line."""

    def __init__(self, args, env, cwd=REPO):
        _RUNNERS.append(self)
        self.proc = subprocess.Popen([sys.executable, "-m", "robot_stack.launch", *map(str, args)], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_line(self, text, timeout_s=30.0):
        with self._cond:
            ok = self._cond.wait_for(lambda: any(text in ln for ln in self.lines), timeout=timeout_s)
        assert ok, f"'{text}' not in output within {timeout_s} s:\n" + "\n".join(self.lines)

    def finish(self, timeout_s=40.0):
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._t.join(timeout=5)
        return rc, "\n".join(self.lines)


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
      remap: [{from: heard, to: chatter}]
      param: [{from: "$(find-pkg-share rs_launch_test)/listener.yaml"}]
      on_exit: shutdown
"""


def test_talker_listener_prefixed_output_arg_override_and_clean_exit(tmp_path, env):
    r = Runner([_write(tmp_path, TALK_LISTEN), "greeting:=hola"], env)
    rc, out = r.finish()
    assert rc == 0, out
    assert "[listener] listener: ready as /demo/listener" in out
    assert "[listener] I heard: hola" in out  # CLI override -> param; remap heard -> chatter
    assert "[listener] listener: done" in out
    # on_exit: shutdown stopped the talker with SIGINT, and it stopped cleanly.
    assert "[talker] talker: clean stop" in out
    assert "'talker' exited with status 0" in out


def test_sigint_to_runner_is_forwarded_and_exit_is_clean(tmp_path, env):
    text = TALK_LISTEN.replace("      on_exit: shutdown\n", "")
    text = text.replace('      param: [{from: "$(find-pkg-share rs_launch_test)/listener.yaml"}]\n', "")
    assert "listener.yaml" not in text
    r = Runner([_write(tmp_path, text)], env)
    r.wait_line("[listener] I heard: hello")
    r.proc.send_signal(signal.SIGINT)
    rc, out = r.finish()
    assert rc == 0, out
    assert "[talker] talker: clean stop" in out and "[listener] listener: clean stop" in out
    assert "SIGKILL" not in out


def test_node_exiting_non_zero_fails_the_launch(tmp_path, env):
    text = TALK_LISTEN.replace("      output: screen\n      param: [{name: greeting", "      output: screen\n      args: --fail-after 1.0\n      param: [{name: greeting", 1)
    text = text.replace("      on_exit: shutdown\n", "")
    text = text.replace('      param: [{from: "$(find-pkg-share rs_launch_test)/listener.yaml"}]\n', "")
    assert "--fail-after" in text and "listener.yaml" not in text
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


def test_device_nodes_start_from_config_files_and_stop_on_sigint(tmp_path, env):
    pytest.importorskip("pyrealsense2")
    import numpy as np

    from robot_stack.testing.realsense_recording import write_software_recording

    rec = write_software_recording(tmp_path / "cam.db3", [np.zeros((48, 64, 3), np.uint8)] * 5, fps=30)
    (tmp_path / "sm.yaml").write_text(yaml.safe_dump({"/**/spacemouse": {"ros__parameters": {"publish_rate_hz": 25.0}}}))
    text = f"""\
    launch:
      - push-ros-namespace: {{namespace: robot_stack}}
      - node:
          pkg: robot_stack
          exec: spacemouse_node
          name: spacemouse
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


def test_children_run_at_normal_priority_even_if_the_runner_is_real_time(tmp_path):
    """franky.Robot() raises its caller to SCHED_FIFO 99; a runner in that state must not
    hand real-time priority to every node (one busy node would starve the machine)."""
    from robot_stack.launch.description import load_launch, parse_cli_args
    from robot_stack.launch.runner import LaunchRunner

    path = _write(tmp_path, "launch:\n  - executable:\n      cmd: \"python -c 'import os; print(\\\"policy\\\", os.sched_getscheduler(0))'\"\n      name: probe\n      output: screen\n")
    plan = load_launch(path, parse_cli_args([]))
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        pytest.skip("needs permission to set real-time scheduling (CI runs as root)")
    import io

    buf = io.StringIO()
    try:
        rc = LaunchRunner(plan, out=buf, log_dir=tmp_path).run()
    finally:
        os.sched_setscheduler(0, *before)
        plan.cleanup()
    out = buf.getvalue()
    assert rc == 0, out
    assert f"policy {os.SCHED_OTHER}" in out, out


def test_launch_prefix_goes_before_the_command_as_in_ros2_launch(tmp_path, env):
    """launch-prefix (node and executable): substituted, split like a shell, put before the
    command; an empty one adds nothing (session.launch.yaml's rt_prefix default)."""
    text = textwrap.dedent("""
        launch:
          - arg: {name: prefix, default: ""}
          - node: {pkg: rs_launch_test, exec: talker, name: plain, launch-prefix: "$(var prefix)"}
          - node: {pkg: rs_launch_test, exec: talker, name: niced, launch-prefix: "nice -n '5'"}
          - executable: {cmd: "python3 -c 'import os; print(os.nice(0))'", name: shown, launch-prefix: "nice -n 7", output: screen}
    """)
    plan = load_launch(_write(tmp_path, text), parse_cli_args([]))
    try:
        plain, niced, shown = plan.processes
        assert plain.cmd[0] == sys.executable
        assert niced.cmd[:4] == ["nice", "-n", "5", sys.executable]
        assert shown.cmd[:3] == ["nice", "-n", "7"]
        out = subprocess.run(shown.cmd, capture_output=True, text=True, timeout=30, check=True).stdout
        assert int(out) == min(19, os.nice(0) + 7)  # the prefix really ran the command
    finally:
        plan.cleanup()
