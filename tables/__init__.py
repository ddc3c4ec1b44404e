"""Faust tables: the pipeline state that must survive a restart or rebalance."""
