"""Test doubles (a fake HID device and its report encoder, a RealSense recording writer).

Tests, benchmarks and configs that want scripted hardware use these; production code never
imports this package (an import contract checks it).
"""
