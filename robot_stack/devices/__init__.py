"""Hardware interfaces, each with a real, a sim and a fake backend chosen by one ``backend``
config field through one factory: ``franka`` (robot arm, safety filter), ``spacemouse``
(operator device, intervention detection), ``cameras``; ``realtime`` (thread scheduling)."""
