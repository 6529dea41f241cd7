"""Cameras: the ``Camera`` interface and ``make_camera`` (``base``), backends ``realsense`` (also
plays RealSense recordings), ``opencv`` and ``sim``."""
