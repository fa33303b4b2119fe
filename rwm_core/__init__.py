"""rwm_core: world models, imagination and offline policy training for legged robots (RWM / RWM-U)."""

__version__ = "0.1.0"
