"""Plain types at the bottom of the dependency order (numpy, yaml and scipy only).

* ``config``: typed dataclass configs (strict loading, field docs, ``make_from_spec``).
* ``spec``: ``PolicySpec`` (observation and action layout) and its JSON.
* ``teleop``: ``SpaceMouseReading``, ``TeleopMapping``, ``OperatorCommand``.
* ``records``: ``StepRecord``, ``EpisodeSummary``, ``PolicyWeights`` (one ROS-free type per message).
* ``intrinsics``: ``CameraIntrinsics`` and the CameraInfo YAML file.
* ``workspace``: ``WorkspaceBox`` and its file.
* ``geometry``: rotations and rigid transforms (scipy ``Rotation``).
* ``errors`` / ``files``: calibration-file errors and safe YAML reading/writing.
"""
