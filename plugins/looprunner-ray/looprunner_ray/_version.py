"""The version of looprunner-ray (read by the build)."""

__version__ = "0.1.0"
