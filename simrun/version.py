"""The version simrun reports (`simrun --version`, summary.json); pyproject.toml has the same."""

__version__ = "0.1.0"
