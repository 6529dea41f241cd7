"""Runs ROS 2 YAML launch files without ros2launch (the subset our launch files use)."""
