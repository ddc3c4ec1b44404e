"""Market data: generators, importers, readers and the data catalogue.

- :mod:`ticktape.data.importers`: streaming file importers with per-reason rejects
- :mod:`ticktape.data.synth`: synthetic ticks from bars or from GBM / regimes, L2 diffs
- :mod:`ticktape.data.readers`: Parquet and store readers, Parquet export
- :mod:`ticktape.data.stats`: streaming tick statistics
- :mod:`ticktape.data.lobster`: LOBSTER order book files

The ``ticktape data`` commands are in :mod:`ticktape.cli.data`; see docs/data.md.
"""
