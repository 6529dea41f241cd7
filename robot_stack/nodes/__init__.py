"""Thin rclpy nodes over the core, one node per file, each with a ``main()``."""
