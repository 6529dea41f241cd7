"""MuJoCo FR3 tasks with cameras, Gymnasium registration, and the simulated operator."""
