"""simrun: test TensorFlow Lite Micro deployments on emulated Cortex-M cores.

    import simrun
    result = simrun.diff("model.tflite", backends="tflite-reference,tflm-host")

`simrun.diff` (simrun/api.py) and `simrun.DiffResult` load on first use, so `import simrun`
stays cheap (no numpy, no interpreters) for the CLI and for tools that only read the version.
"""

from .version import __version__

__all__ = ["DiffResult", "diff", "__version__"]


def __getattr__(name: str):
    if name == "diff":
        from .api import diff
        return diff
    if name == "DiffResult":
        from .analysis.result import DiffResult
        return DiffResult
    raise AttributeError(f"module 'simrun' has no attribute {name!r}")
