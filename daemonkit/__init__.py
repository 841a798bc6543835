"""daemonkit: Unix daemons and inter-process communication, with real processes and measurements.

Linux only (it reads /proc and uses Linux system calls throughout).
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
