"""Values that cross a boundary, no I/O: the tick, level, book and result
dtypes and the columnar :class:`~ticktape.model.batch.Batch` with its wire
format, run specs and engine config (:mod:`~ticktape.model.spec`)."""
