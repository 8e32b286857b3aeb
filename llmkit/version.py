"""The package version, in the lowest layer so any module can name it without importing the
whole package (``llmkit/__init__`` pulls in the pipelines)."""

__version__ = "0.1.0"
