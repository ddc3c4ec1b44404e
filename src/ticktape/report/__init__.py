"""Reports to share: one self-contained HTML file per run, sweep or study
(``ticktape report``). A report is a list of :class:`~ticktape.report.document.Section`;
each kind of result (run, sweep, walk-forward study, Monte Carlo) contributes
its own sections from its own module in this room."""
