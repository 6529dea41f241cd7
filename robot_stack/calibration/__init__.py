"""Calibration math: ChArUco intrinsics, hand-eye, workspace box (ROS-free).

Modules (import the one you need; this package imports nothing heavy by itself):

* ``workspace``: ``box_from_positions`` (the box type and its file: :mod:`robot_stack.types.workspace`).
* ``intrinsics``: ``ViewSelector``, ``calibrate_intrinsics``, ``compare_intrinsics``,
  ``realsense_factory_intrinsics`` (``CameraIntrinsics`` and the CameraInfo YAML:
  :mod:`robot_stack.types.intrinsics`).
* ``handeye``: ``solve_hand_eye``, ``check_pose_set``, ``HandEyeCollector``, ``Extrinsic``,
  ``load_extrinsic_yaml`` / ``save_extrinsic_yaml``, ``static_transform_from_result``.
* ``board``: ``BoardConfig``, ``BoardDetector``, ``estimate_board_pose``, ``save_board_png/pdf``.
* ``synthetic`` / ``sim_board_scene``: fake cameras with known truth (OpenCV warp, MuJoCo).
* ``ros_collect``: optional rclpy collectors, imported only by the CLI's live modes.

CLI: ``python -m robot_stack.calibration {board,intrinsics,handeye,workspace,show,selftest}``.
"""
