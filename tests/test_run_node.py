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
