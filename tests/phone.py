"""The test desk phone lives in the package so that benchmarks can use it too."""

from sipassist.bench.phone import PHONE_RATE, TestPhone, write_phone_wav

__all__ = ["PHONE_RATE", "TestPhone", "write_phone_wav"]
