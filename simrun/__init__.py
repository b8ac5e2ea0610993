"""simrun: test TensorFlow Lite Micro deployments on emulated Cortex-M cores."""

__version__ = "0.1.0"
