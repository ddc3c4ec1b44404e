"""Market data: generators, importers, readers and the data catalogue.

- :mod:`ticktape.data.convention`: the one column/time convention of every file and
  frame reader (``ticktape backtest``, ``data import``, ``data generate --from-bars``)
- :mod:`ticktape.data.importers`: streaming file importers with per-reason rejects
- :mod:`ticktape.data.synth`: the one generator module: the demo's random walk, GBM /
  regimes, ticks from bars, L2 diffs
- :mod:`ticktape.data.readers`: Parquet and store readers, Parquet export
- :mod:`ticktape.data.stats`: streaming tick statistics, the finest increment of a column
- :mod:`ticktape.data.lobster`: LOBSTER order book files

The ``ticktape data`` commands are in :mod:`ticktape.cli.data`; see docs/data.md.
"""
