"""Single-process training (``train``) and evaluation (``evaluate``) on the sim, built from the
objects the nodes run."""
