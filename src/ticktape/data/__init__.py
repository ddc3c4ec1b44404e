"""Market data: generators, importers, readers and the data catalogue."""
