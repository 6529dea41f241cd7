"""run_node (every node's main()): Ctrl-C and SIGTERM end the spin with the ROS context still
up, so a node's close() can still publish (the Franka node's shutdown report, the actor's wait
for step acknowledgments); the process exits 0. Real processes, real signals, real DDS."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from rclpy.node import Node  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from robot_stack.nodes import qos  # noqa: E402

NODE = textwrap.dedent("""
    import sys
    from rclpy.node import Node
    from std_msgs.msg import String
    from robot_stack.nodes import qos
    from robot_stack.nodes.params import run_node

    class Closing(Node):
        def __init__(self):
            super().__init__("closing_probe_node")
            self.pub = self.create_publisher(String, "/test_run_node/events", qos.STEPS)
            self.create_timer(0.1, lambda: self.pub.publish(String(data="alive")))

        def close(self):
            ok = self.context.ok()
            self.pub.publish(String(data=f"closing context_ok={ok}"))
            if ok:
                acked = self.pub.wait_for_all_acked()
                print(f"acked={acked}", flush=True)

    sys.exit(run_node(Closing))
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.timing  # a signal, then messages over DDS on loopback within the wait
def test_close_runs_with_the_context_up_and_its_messages_arrive(ros_context, spin, collector, sig):
    probe = Node("probe", context=ros_context)
    events = collector(probe, String, "/test_run_node/events", qos.STEPS)
    spin(probe)
    proc = subprocess.Popen([sys.executable, "-c", NODE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=os.environ.copy())
    try:
        events.wait_for(3, timeout_s=20.0, where=lambda m: m.data == "alive")
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=20.0)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    closing = events.wait_for(1, timeout_s=5.0, where=lambda m: m.data.startswith("closing"))
    assert closing[0].data == "closing context_ok=True", json.dumps([m.data for m in events.messages[-3:]])
    assert "acked=True" in out, out


# ----------------------------------------------------------------------------- one-line start-up errors
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _start(script: str, *ros_args: str, timeout_s: float = 90.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), "--ros-args", *ros_args],
                          capture_output=True, text=True, timeout=timeout_s, env=os.environ.copy())


def _one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert proc.returncode == 2, f"exit {proc.returncode}:\n{proc.stderr[-2000:]}"
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


def test_a_mistyped_node_section_in_a_second_params_file_is_refused(tmp_path):
    first = tmp_path / "first.yaml"
    first.write_text("/**/monitor:\n  ros__parameters:\n    window: 10\n")
    second = tmp_path / "second.yaml"
    second.write_text("monitr:\n  ros__parameters:\n    plot_every_s: 5.0\n")
    proc = _start("monitor_node", "--params-file", str(first), "--params-file", str(second), "-p", f"out_dir:={tmp_path}",
                  timeout_s=30.0)
    _one_line_error(proc, str(second), "'monitr'", "did you mean '/robot_stack/monitor' or '/**/monitor'")
    # A bare node name is a section for a node outside any namespace: ROS ignores it here.
    bare = tmp_path / "bare.yaml"
    bare.write_text("monitor:\n  ros__parameters:\n    window: 10\n")
    proc = _start("monitor_node", "--params-file", str(bare), "-p", f"out_dir:={tmp_path}")
    _one_line_error(proc, str(bare), "section 'monitor' does not name node '/robot_stack/monitor'")
    other = tmp_path / "other.yaml"
    other.write_text("learner:\n  ros__parameters:\n    run_dir: x\n")
    proc = _start("monitor_node", "--params-file", str(other), "-p", f"out_dir:={tmp_path}")
    _one_line_error(proc, str(other), "no section for node '/robot_stack/monitor'")


def test_unusable_arguments_and_files_give_one_line_errors(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("monitor:\n  ros__parameters: {window: [1\n")
    _one_line_error(_start("monitor_node", "--params-file", str(broken)), "cannot be used", "params file")
    _one_line_error(_start("sim_world_node", "-p", "operator_skill:=expert_51", "-p", "physics:=direct",
                           "-p", f"direct_port:={17500 + os.getpid() % 100}"), "expert_51", "expert_50")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    spec = os.path.join(ROOT, "policies", "specs", "reach_front_64.json")
    _one_line_error(_start("learner_node", "-p", f"run_dir:={run_dir}", "-p", f"spec_file:={spec}",
                           "-p", "tensorboard:=false"), str(run_dir / "checkpoint.pt"), "unreadable")
