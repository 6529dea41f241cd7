"""Calibration math: ChArUco intrinsics, hand-eye, workspace box (ROS-free)."""
