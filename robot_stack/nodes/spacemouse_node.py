"""SpaceMouse node: device readings -> operator commands (intervention state + EE twist).

Publishes (names relative to the namespace, see robot_stack.nodes.topics)
  ``operator`` (robot_stack/OperatorCommand, qos.COMMAND): at ``publish_rate_hz``
      and at once when the intervention starts/ends or a button event happens, and (with
      ``publish_on_report``, the default) at once whenever a new device report changes the
      reading while the operator intervenes, so a correction reaches the robot within one
      device read instead of one publish period.
      ``header.stamp`` is the time of the device read the command is based on (ROS clock),
      so takeover latency can be measured end to end.
  ``spacemouse/joy`` (sensor_msgs/Joy, qos.SENSOR): raw axes and buttons.
  ``spacemouse/twist`` (geometry_msgs/TwistStamped, qos.SENSOR): the device
      deflection as a base-frame twist (deadzone applied), whether or not intervening.

A reader thread waits on the device (hidapi's ``hid_read_timeout``: the kernel wakes it when
a report arrives), so each report is decoded and, while intervening, published the moment it
arrives; the thread also wakes at least ``read_rate_hz`` times a second for hold times,
periodic publishing and reconnects. When the device is absent, not permitted, or
unplugged, the node publishes ``intervening=false`` with a zero twist (the robot holds
still), logs what to do, and retries every ``reconnect_period_s``. A malformed HID report
(shorter than its layout, or an unknown report id) is dropped and counted without ending an
intervention (a warning every ``malformed_log_period_s`` says how many); a deflected device
that goes quiet ends the intervention after ``intervention.report_timeout_s``.

Parameters: every field of :class:`SpaceMouseNodeConfig` (see config/spacemouse.yaml).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from rclpy.node import Node
from rclpy.time import Time

from robot_stack.devices.realtime import RealtimeError, make_current_thread_fifo
from robot_stack.devices.spacemouse.base import SpaceMouseConfig, SpaceMouseError, make_spacemouse
from robot_stack.devices.spacemouse.intervention import InterventionDetector, InterventionUpdate
from robot_stack.nodes import convert, topics
from robot_stack.nodes.params import declare_config, run_node
from robot_stack.types.config import ConfigError
from robot_stack.types.teleop import SpaceMouseReading



@dataclass(frozen=True)
class SpaceMouseNodeConfig(SpaceMouseConfig):
    """SpaceMouse node parameters: the device config plus publishing."""

    publish_rate_hz: float = 50.0
    """Rate of periodic OperatorCommand/Joy/Twist messages in Hz (state changes go out at once)."""
    frame_id: str = "base"
    """Frame of the commanded twist (the robot base frame)."""
    reconnect_period_s: float = 1.0
    """Seconds between attempts to (re)open a missing device."""
    reader_thread_priority: int = 0
    """SCHED_FIFO priority (1..98) of the reader thread (it reads, decides and publishes a
    takeover), so a busy machine cannot delay it; 0: normal scheduling. Needs root,
    CAP_SYS_NICE or an rtprio limit; refused, the node says how to allow it and goes on."""
    publish_on_report: bool = True
    """While intervening, publish at once when a new device report changed the reading (false:
    only at publish_rate_hz); the device's own report rate (about 100 Hz) bounds the rate."""
    malformed_log_period_s: float = 5.0
    """At most one warning per this many seconds about dropped (malformed) device reports, s."""

    def validate(self) -> None:
        super().validate()
        if not 0 < self.publish_rate_hz <= self.read_rate_hz:
            raise ValueError(f"publish_rate_hz must be in (0, read_rate_hz={self.read_rate_hz}], got {self.publish_rate_hz}")
        if not 0 <= self.reader_thread_priority <= 98:
            raise ValueError(f"reader_thread_priority must be in 0..98 (0: normal scheduling), got {self.reader_thread_priority}")
        if self.reconnect_period_s <= 0:
            raise ValueError(f"reconnect_period_s must be > 0, got {self.reconnect_period_s}")
        if not self.malformed_log_period_s > 0:
            raise ValueError(f"malformed_log_period_s must be > 0, got {self.malformed_log_period_s}")


class SpaceMouseNode(Node):
    """Thin node over :mod:`robot_stack.devices.spacemouse`."""

    def __init__(self, *, source: Any = None, hid_device: Any = None, **node_kwargs: Any) -> None:
        """``source`` feeds the sim backend, ``hid_device`` the fake one (in-process use, tests)."""
        node_kwargs.setdefault("namespace", topics.DEFAULT_NAMESPACE)
        super().__init__(node_kwargs.pop("node_name", "spacemouse"), **node_kwargs)
        self.config = declare_config(self, SpaceMouseNodeConfig)
        self.device = make_spacemouse(self.config, source=source, hid_device=hid_device)
        self.detector = InterventionDetector(self.config.intervention, self.config.mapping)
        self.pub_operator = topics.publisher(self, topics.OPERATOR)
        self.pub_joy = topics.publisher(self, topics.SPACEMOUSE_JOY)
        self.pub_twist = topics.publisher(self, topics.SPACEMOUSE_TWIST)
        self._next_connect_t = 0.0
        self._next_publish_t = 0.0
        self._last_error = ""
        self._last_reading: SpaceMouseReading | None = None
        self._dropped_logged = 0
        self._dropped_log_t = -float("inf")
        self._stale_logged = 0
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name="spacemouse-reader", daemon=True)
        self._reader.start()
        self.get_logger().info(
            f"SpaceMouse backend '{self.config.backend}', reading at {self.config.read_rate_hz:g} Hz, "
            f"publishing {self.pub_operator.topic_name} at {self.config.publish_rate_hz:g} Hz"
        )

    # -- time -----------------------------------------------------------------------
    def _stamp(self, t_monotonic: float):
        """ROS time of a monotonic-clock instant (readings carry monotonic time)."""
        now_ns = self.get_clock().now().nanoseconds
        age_ns = int((time.monotonic() - t_monotonic) * 1e9)
        return Time(nanoseconds=max(0, now_ns - age_ns)).to_msg()

    # -- device ---------------------------------------------------------------------
    def _report_error(self, message: str) -> None:
        if message != self._last_error:  # log each distinct problem once, not 200 times a second
            self.get_logger().error(message)
            self._last_error = message

    def _ensure_connected(self, now: float) -> bool:
        if self.device.connected:
            return True
        if now < self._next_connect_t:
            return False
        self._next_connect_t = now + self.config.reconnect_period_s
        try:
            self.device.connect()
        except (SpaceMouseError, ConfigError) as e:
            self._report_error(f"SpaceMouse unavailable: {e}")
            return False
        self.get_logger().info("SpaceMouse connected")
        self._last_error = ""
        return True

    def _read_loop(self) -> None:
        if self.config.reader_thread_priority > 0:
            try:
                make_current_thread_fifo(self.config.reader_thread_priority)
            except RealtimeError as e:
                self.get_logger().warning(f"reader_thread_priority: {e}; the reader runs at normal priority")
        period_s = 1.0 / self.config.read_rate_hz
        wake_t = time.monotonic()
        while not self._stop.is_set() and self.context.ok():
            wake_t = max(wake_t + period_s, time.monotonic())  # no catch-up burst after a stall
            try:
                self._tick(wait_s=wake_t - time.monotonic())
            except Exception as e:  # noqa: BLE001 - the reader must outlive any one bad read
                if self._stop.is_set() or not self.context.ok():
                    return  # torn down under the read: the node is stopping
                # A bug here must not leave the operator "intervening" on a stale twist: end the
                # intervention (robot holds), say so once, and keep reading.
                self._report_error(f"SpaceMouse reader failed: {e!r}; intervention ended, robot holds still")
                self._publish(self.detector.disconnect(time.monotonic()), None)
                self._stop.wait(self.config.reconnect_period_s)

    def _tick(self, wait_s: float = 0.0) -> None:
        now = time.monotonic()
        if not self.device.connected and now < self._next_connect_t:
            self._stop.wait(max(0.0, wait_s))  # nothing to wait on: pace the reconnect checks
            now = time.monotonic()
        periodic = now >= self._next_publish_t
        if periodic:
            self._next_publish_t = max(self._next_publish_t + 1.0 / self.config.publish_rate_hz, now)
        if not self._ensure_connected(now):
            upd = self.detector.disconnect(now)
            if periodic or upd.changed:
                self._publish(upd, None)
            return
        try:
            reading = self.device.read(wait_s=max(0.0, wait_s))
        except SpaceMouseError as e:
            self._report_error(f"{e}; intervention ended, robot holds still")
            self._next_connect_t = now + self.config.reconnect_period_s
            self._publish(self.detector.disconnect(now), None)
            return
        upd = self.detector.update(reading)
        self._log_dropped_reports(now)
        if self.detector.stale_timeouts > self._stale_logged:
            self._stale_logged = self.detector.stale_timeouts
            self.get_logger().warning(
                f"SpaceMouse went quiet while deflected (no report for {reading.report_age_s:.2f} s > "
                f"report_timeout_s={self.config.intervention.report_timeout_s:g}): intervention ended, robot holds still")
        last, self._last_reading = self._last_reading, reading
        new_report = last is None or last.buttons != reading.buttons or not np.array_equal(last.axes, reading.axes)
        if periodic or upd.changed or (self.config.publish_on_report and upd.command.intervening and new_report):
            self._publish(upd, reading)

    def _log_dropped_reports(self, now: float) -> None:
        counters = getattr(self.device, "counters", None)
        if not counters:
            return
        dropped = counters["malformed_reports"] + counters["ignored_reports"] + counters["decode_errors"]
        if dropped > self._dropped_logged and now - self._dropped_log_t >= self.config.malformed_log_period_s:
            self.get_logger().warning(
                f"dropped {dropped - self._dropped_logged} malformed SpaceMouse report(s) ({dropped} in all; "
                f"last: {self.device.last_problem}); the intervention state is unaffected")
            self._dropped_logged, self._dropped_log_t = dropped, now

    # -- messages -------------------------------------------------------------------
    def _publish(self, upd: InterventionUpdate, reading: SpaceMouseReading | None) -> None:
        stamp = self._stamp(upd.command.t)
        self.pub_operator.publish(convert.operator_to_msg(upd.command, self.config.frame_id, stamp=stamp))
        if reading is None:
            return
        self.pub_joy.publish(convert.joy_to_msg(reading.axes, reading.buttons, stamp))
        lin, ang = self.detector.device_twist(reading)
        self.pub_twist.publish(convert.twist_to_msg(lin, ang, stamp, self.config.frame_id))

    def close(self) -> None:
        self._stop.set()
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)
        self.device.close()

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(SpaceMouseNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
