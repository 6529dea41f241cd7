"""Shared, ROS-free building blocks: specs, configs, safety, device interfaces."""
