"""ticktape: a tick-level backtesting engine built as a stream-processing pipeline."""

__version__ = "0.1.0"
