"""SpaceMouse: the ``SpaceMouse`` interface and ``make_spacemouse`` (``base``), backends ``real``
(pyspacemouse), ``fake`` and ``sim``; ``intervention`` turns readings into operator commands."""
