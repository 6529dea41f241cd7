"""Franka robot: the ``FrankaRobot`` protocol and ``make_robot`` (``base``), backends ``franky``,
``direct`` (the sim world's UDP link, ``wire`` protocol) and ``fake``; ``safety`` and ``servo``."""
