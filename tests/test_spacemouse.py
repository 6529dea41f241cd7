"""SpaceMouse core: pyspacemouse decoding of byte-level reports, intervention detection."""
from __future__ import annotations

import numpy as np
import pytest

from robot_stack.devices.spacemouse.fake import FakeHidSpaceMouse
from robot_stack.devices.spacemouse.intervention import InterventionConfig, InterventionDetector
from robot_stack.devices.spacemouse.sim import SimSpaceMouse
from robot_stack.testing.spacemouse import FakeHidDevice, encode_reports, load_report_script
from robot_stack.types.config import ConfigError, from_dict
from robot_stack.devices.spacemouse.base import (
    SpaceMouseConfig,
    SpaceMouseDisconnected,
    SpaceMouseError,
    make_spacemouse,
)
from robot_stack.types.teleop import GRIPPER_CLOSE, GRIPPER_KEEP, GRIPPER_OPEN, MARK_FAILURE, MARK_NONE, MARK_SUCCESS, SpaceMouseReading, TeleopMapping

SCRIPTED = "robot_stack.testing.spacemouse:scripted_hid_device"


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


@pytest.fixture
def device():
    clock = Clock()
    hid = FakeHidDevice(clock=clock)
    sm = FakeHidSpaceMouse(hid, clock=clock)
    sm.connect()
    yield sm, hid, clock
    sm.close()


def test_pyspacemouse_decodes_hand_written_compact_reports(device):
    sm, hid, _ = device
    # SpaceMouse Compact report 1 = x, y, z as little-endian int16, full scale 350.
    # x = +350 (0x015e) -> +1 right; HID y = -175 (0xff51) -> +0.5 (y away from the operator).
    hid.push(bytes([1, 0x5E, 0x01, 0x51, 0xFF, 0x00, 0x00]))
    hid.push(bytes([3, 0b10, 0, 0, 0, 0, 0]))  # report 3: right button
    r = sm.read()
    assert r.axes[0] == pytest.approx(1.0)
    assert r.axes[1] == pytest.approx(0.5)
    assert r.axes[2] == pytest.approx(0.0)
    assert r.buttons == (0, 1)
    assert hid.is_open and hid.nonblocking


def test_encoded_reports_round_trip_through_pyspacemouse(device):
    sm, hid, _ = device
    axes = np.array([0.3, -0.6, 0.9, 0.2, -0.4, 0.7])
    for rep in encode_reports(axes, (1, 0)):
        hid.push(rep)
    r = sm.read()
    np.testing.assert_allclose(r.axes, axes, atol=1 / 350)
    assert r.buttons == (1, 0)


def test_unplug_raises_disconnected_and_drops_device(device):
    sm, hid, _ = device
    hid.unplug()
    with pytest.raises(SpaceMouseDisconnected, match="re-plug"):
        sm.read()
    assert not sm.connected


def test_open_failure_explains_udev_rule():
    sm = FakeHidSpaceMouse(FakeHidDevice(fail_open=True))
    with pytest.raises(SpaceMouseError, match="udev"):
        sm.connect()


def test_real_backend_without_device_says_what_to_do():
    sm = make_spacemouse(SpaceMouseConfig(backend="real"))
    assert not sm.connected  # constructor does no I/O
    with pytest.raises(SpaceMouseError, match="Plug the device in"):
        sm.connect()


def _reading(t, axes=(0, 0, 0, 0, 0, 0), buttons=(0, 0)):
    return SpaceMouseReading(t=t, axes=np.asarray(axes, dtype=float), buttons=buttons)


def test_intervention_engages_with_twist_and_holds_after_release():
    cfg = InterventionConfig(deadzone=0.05, engage_threshold=0.15, release_threshold=0.08, hold_s=0.5)
    mapping = TeleopMapping(max_lin_speed_m_s=0.2)
    det = InterventionDetector(cfg, mapping)
    u = det.update(_reading(0.0, (0.1, 0, 0, 0, 0, 0)))
    assert not u.command.intervening and not u.changed  # below the engage threshold
    assert np.all(u.command.lin_m_s == 0)
    u = det.update(_reading(0.01, (0.525, 0, 0, 0, 0, 0)))
    assert u.command.intervening and u.changed
    # deadzone rescaled: (0.525 - 0.05) / 0.95 = 0.5 of full speed
    np.testing.assert_allclose(u.command.lin_m_s, [0.1, 0, 0])
    u = det.update(_reading(0.02, (0.1, 0, 0, 0, 0, 0)))  # in the hysteresis band: still active
    assert u.command.intervening and not u.changed
    u = det.update(_reading(0.03))  # released
    assert u.command.intervening and np.all(u.command.lin_m_s == 0)
    u = det.update(_reading(0.02 + 0.49))
    assert u.command.intervening
    u = det.update(_reading(0.02 + 0.5))
    assert not u.command.intervening and u.changed


def test_gripper_buttons_while_intervening_and_marks_otherwise():
    det = InterventionDetector(InterventionConfig(hold_s=0.5))
    u = det.update(_reading(0.0, buttons=(0, 1)))
    assert u.command.episode_mark == MARK_SUCCESS and u.changed and not u.command.intervening
    u = det.update(_reading(0.01, buttons=(0, 1)))
    assert u.command.episode_mark == MARK_NONE  # one-shot on the press
    u = det.update(_reading(0.02, buttons=(1, 0)))
    assert u.command.episode_mark == MARK_FAILURE
    det.update(_reading(0.03, axes=(0, 0, 0.5, 0, 0, 0)))
    u = det.update(_reading(0.04, axes=(0, 0, 0.5, 0, 0, 0), buttons=(1, 0)))
    assert u.command.intervening and u.command.gripper == GRIPPER_CLOSE and u.command.episode_mark == MARK_NONE
    u = det.update(_reading(0.9, buttons=(0, 1)))  # a held gripper button keeps the intervention alive
    assert u.command.intervening and u.command.gripper == GRIPPER_OPEN
    u = det.update(_reading(0.95))
    assert u.command.gripper == GRIPPER_KEEP and u.changed


def test_disconnect_ends_intervention_with_zero_command():
    det = InterventionDetector()
    assert det.update(_reading(0.0, (0.8, 0, 0, 0, 0, 0))).command.intervening
    u = det.disconnect(0.1)
    assert not u.command.intervening and u.changed
    assert np.all(u.command.lin_m_s == 0) and np.all(u.command.ang_rad_s == 0)


def test_bad_intervention_config_is_rejected_with_reason():
    with pytest.raises(ConfigError, match="release_threshold"):
        from_dict(SpaceMouseConfig, {"intervention": {"release_threshold": 0.5, "engage_threshold": 0.2}})
    with pytest.raises(ConfigError, match="backend"):
        from_dict(SpaceMouseConfig, {"backend": "bluetooth"})


def test_replay_script_drives_the_fake_backend(tmp_path):
    script = tmp_path / "reports.yaml"
    script.write_text(
        "device: SpaceMouseCompact\n"
        "reports:\n"
        "  - {at_s: 0.0, axes: [0, 0.5, 0, 0, 0, 0]}\n"
        "  - {at_s: 1.0, hex: '01 00 00 00 00 00 00'}\n"
        "  - {at_s: 2.0, unplug: true}\n"
    )
    name, entries = load_report_script(script)
    assert name == "SpaceMouseCompact" and entries[-1] == (2.0, None)
    clock = Clock()
    sm = make_spacemouse(SpaceMouseConfig(backend="fake", fake_reports_file=str(script), hid_provider=SCRIPTED), clock=clock)
    sm.connect()
    assert sm.read().axes[1] == pytest.approx(0.5, abs=1 / 350)
    clock.t += 1.0
    assert sm.read().axes[1] == 0.0
    clock.t += 1.0
    with pytest.raises(SpaceMouseDisconnected):
        sm.read()


@pytest.mark.timing  # wall-clock anchoring and wake-up times (upper bounds)
def test_replay_script_anchored_to_the_wall_clock(tmp_path):
    """fake_script_start_unix_s: the script's time origin is a wall-clock instant, not
    connect(), so another process knows when each report arrives."""
    import time

    script = tmp_path / "reports.yaml"
    script.write_text(
        "reports:\n"
        "  - {at_s: 0.0, axes: [0.5, 0, 0, 0, 0, 0]}\n"
        "  - {at_s: 10.0, axes: [-0.5, 0, 0, 0, 0, 0]}\n"
    )
    clock = Clock()
    cfg = SpaceMouseConfig(backend="fake", fake_reports_file=str(script), fake_script_start_unix_s=time.time() - 9.5,
                           hid_provider=SCRIPTED)
    sm = make_spacemouse(cfg, clock=clock)
    sm.connect()
    assert sm.read().axes[0] == pytest.approx(0.5, abs=1 / 350)  # due 9.5 s ago: readable at once
    clock.t += 0.4
    assert sm.read().axes[0] == pytest.approx(0.5, abs=1 / 350)  # the second is due 0.5 s after connect
    clock.t += 0.2
    assert sm.read().axes[0] == pytest.approx(-0.5, abs=1 / 350)
    with pytest.raises(ValueError, match="fake_script_start_unix_s"):
        SpaceMouseConfig(backend="fake", fake_script_start_unix_s=-1.0).validate()


def test_bad_replay_script_names_the_entry(tmp_path):
    script = tmp_path / "bad.yaml"
    script.write_text("reports:\n  - {at_s: 0.0, axes: [1, 2]}\n")
    with pytest.raises(ConfigError, match=r"reports\[0\].*6 values"):
        load_report_script(script)


def test_sim_backend_reads_provider_and_treats_none_as_hands_off():
    readings = [None, _reading(5.0, (0, 0, 0.4, 0, 0, 0))]

    class Source:
        def read(self):
            return readings.pop(0)

    sm = SimSpaceMouse(Source(), clock=lambda: 1.0)
    sm.connect()
    r = sm.read()
    assert r.t == 1.0 and np.all(r.axes == 0)
    assert sm.read().axes[2] == 0.4
    with pytest.raises(ConfigError, match="needs a source"):
        make_spacemouse(SpaceMouseConfig(backend="sim"))


@pytest.mark.timing  # wall-clock anchoring and wake-up times (upper bounds)
def test_read_with_wait_wakes_on_a_report_through_pyspacemouse():
    """read(wait_s) blocks on the HID device (hid_read_timeout) and returns as soon as a report
    arrives, decoded by pyspacemouse: no polling period between a report and its reading."""
    import threading
    import time

    hid = FakeHidDevice()
    sm = FakeHidSpaceMouse(hid)
    sm.connect()
    try:
        t0 = time.monotonic()
        idle = sm.read(wait_s=0.1)  # nothing comes: waits the whole 0.1 s, reads no deflection
        assert time.monotonic() - t0 >= 0.09
        assert not np.any(idle.axes)

        reports = encode_reports([0.5, 0, 0, 0, 0, 0])
        pusher = threading.Timer(0.05, lambda: [hid.push(r) for r in reports])
        t0 = time.monotonic()
        pusher.start()
        got = sm.read(wait_s=5.0)
        waited_s = time.monotonic() - t0
        pusher.join()
        assert got.axes[0] == pytest.approx(0.5, abs=1 / 350)
        assert waited_s < 2.5, f"read(wait_s=5) took {waited_s:.2f} s: it did not wake on the report"
    finally:
        sm.close()


@pytest.mark.timing  # wall-clock anchoring and wake-up times (upper bounds)
def test_read_with_wait_wakes_on_a_scripted_report_and_on_unplug():
    import threading
    import time

    script = [(0.1, encode_reports([0, 0.4, 0, 0, 0, 0])[0])]
    hid = FakeHidDevice(script=script, stream_period_s=0.0)  # no repeats: the second read waits for the unplug
    sm = FakeHidSpaceMouse(hid)
    sm.connect()
    t0 = time.monotonic()
    got = sm.read(wait_s=5.0)
    assert 0.09 <= time.monotonic() - t0 < 2.5
    assert got.axes[1] == pytest.approx(0.4, abs=1 / 350)
    threading.Timer(0.05, hid.unplug).start()
    with pytest.raises(SpaceMouseDisconnected):
        sm.read(wait_s=5.0)
    assert not sm.connected


# ----------------------------------------------------------------------------- malformed and stale reports
def test_a_short_report_is_dropped_counted_and_does_not_end_the_intervention(device):
    """b"\\x03" is a button report one byte long: pyspacemouse would index past its end."""
    sm, hid, clock = device
    det = InterventionDetector(InterventionConfig(hold_s=0.5))
    for rep in encode_reports([0.6, 0, 0, 0, 0, 0], (0, 0)):
        hid.push(rep)
    assert det.update(sm.read()).command.intervening
    hid.push(b"\x03")
    hid.push(bytes([1, 0x10]))  # an axis report cut after one data byte
    clock.t += 0.01
    r = sm.read()
    assert sm.counters["malformed_reports"] == 2 and "needs" in sm.last_problem
    assert r.axes[0] == pytest.approx(0.6, abs=1 / 350) and r.buttons == (0, 0)  # state untouched
    upd = det.update(r)
    assert upd.command.intervening and not upd.changed


def test_fuzz_100k_random_reports_never_escape_the_read_and_never_half_decode():
    """10^5 random reports (every report id, lengths 0-64) between valid deflection reports:
    read() never raises, every report is decoded or counted as dropped, the decoded state is
    what the valid reports alone give, and the intervention in progress never ends."""
    import pyspacemouse

    from robot_stack.devices.spacemouse.real import device_spec

    rng = np.random.default_rng(0)
    clock = Clock()
    hid = FakeHidDevice(clock=clock)
    sm = FakeHidSpaceMouse(hid, clock=clock)
    sm.connect()
    reference = pyspacemouse.SpaceMouseDevice(info=device_spec("SpaceMouseCompact"), device=None)
    need = {1: 7, 2: 7, 3: 2}  # the Compact layout: x,y,z / pitch,roll,yaw as int16 pairs, buttons in byte 1
    det = InterventionDetector(InterventionConfig())
    for rep in encode_reports([0.9, 0, 0, 0, 0, 0], (0, 0)):
        hid.push(rep)
    assert det.update(sm.read()).command.intervening
    sm.counters.clear()
    deflect = encode_reports([0.9, 0.9, 0.9, 0, 0, 0])[0]
    n_total = 100_000
    ids = np.where(rng.random(n_total) < 0.5, rng.integers(0, 256, n_total), rng.integers(0, 5, n_total)).tolist()
    lengths = rng.integers(0, 65, n_total).tolist()
    pool = rng.bytes(64 * n_total)
    pushed = valid = dropped = 0
    while pushed < n_total:
        batch = []
        for k in range(pushed, min(n_total, pushed + int(rng.integers(1, 40)))):
            n = lengths[k]
            batch.append(bytes([ids[k]]) + pool[64 * k:64 * k + n - 1] if n else b"")
        # keep the operator deflected: a full-scale translation report after each batch
        pushed += len(batch)
        batch.append(deflect)
        for rep in batch:
            hid.push(rep)
            if not rep:
                continue  # an empty read is "no report"
            if rep[0] in need and len(rep) >= need[rep[0]]:
                reference._process(rep)
                valid += 1
            else:
                dropped += 1
        while True:  # drain the queue (a read takes at most 32 reports)
            r = sm.read()
            assert det.update(r).command.intervening, "a report ended the intervention"
            if not hid._queue:
                break
    c = sm.counters
    assert c["malformed_reports"] + c["ignored_reports"] == dropped and c["reports"] == valid
    assert c["decode_errors"] == 0 and c["malformed_reports"] > 1000
    ref = reference._state
    want = np.clip([ref.x, ref.y, ref.z, ref.pitch, ref.roll, ref.yaw], -1, 1)
    np.testing.assert_allclose(r.axes, want)
    assert r.buttons == tuple(ref.buttons)
    sm.close()


def test_a_device_that_goes_quiet_while_deflected_ends_the_intervention(device):
    """No release report and no error: once the newest report is report_timeout_s old, the
    intervention ends with a zero command and does not come back until reports do."""
    sm, hid, clock = device
    det = InterventionDetector(InterventionConfig(hold_s=0.6, report_timeout_s=0.25))
    for rep in encode_reports([0.7, 0, 0, 0, 0, 0]):
        hid.push(rep)
    assert det.update(sm.read()).command.intervening
    clock.t += 0.2
    upd = det.update(sm.read())  # the device repeats the deflection (every 8 ms)
    assert upd.command.intervening and upd.command.lin_m_s[0] > 0 and sm.read().report_age_s < 0.01
    hid.hang()
    clock.t += 0.2
    upd = det.update(sm.read())
    assert upd.command.intervening and upd.command.lin_m_s[0] > 0  # still within the timeout
    clock.t += 0.1  # 0.3 s without a report
    upd = det.update(sm.read())
    assert not upd.command.intervening and upd.changed and not np.any(upd.command.lin_m_s)
    assert det.stale_timeouts == 1
    clock.t += 10.0
    upd = det.update(sm.read())
    assert not upd.command.intervening and not np.any(upd.command.lin_m_s)
    hid.resume()  # the device speaks again: a fresh takeover
    assert det.update(sm.read()).command.intervening


def test_the_command_is_exactly_zero_during_the_hold_after_a_release():
    """A deflection between the deadzone and the release threshold is a release: the robot holds
    still for hold_s (no creeping at a few mm/s)."""
    det = InterventionDetector(InterventionConfig(deadzone=0.05, release_threshold=0.08, hold_s=0.6))
    assert det.update(_reading(0.0, (0.5, 0, 0, 0, 0, 0))).command.intervening
    for t in (0.1, 0.3, 0.5):
        cmd = det.update(_reading(t, (0.07, 0, 0, 0, 0, 0))).command
        assert cmd.intervening and not np.any(cmd.lin_m_s) and not np.any(cmd.ang_rad_s)
    assert not det.update(_reading(0.75, (0.07, 0, 0, 0, 0, 0))).command.intervening
