"""Benchmarks run by `sipassist bench ...` on the machine itself, with the installed models."""
