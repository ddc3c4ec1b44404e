"""The embedded broker and PostgreSQL processes (and the keeper that stops the
server with its last user), started and stopped as child processes that never
outlive ticktape.

- :mod:`~ticktape.runtime.embedded`: :class:`~ticktape.runtime.embedded.Runtime`,
  the broker and the database one ticktape process talks to;
- :mod:`~ticktape.runtime.processes`: children that die with us, escalation
  to SIGKILL, malloc tuning, ports, log tails;
- :mod:`~ticktape.runtime.kafka`: a broker answers, topics are created;
- :mod:`~ticktape.runtime.postgres`: the embedded server's programs, user,
  settings, socket folder and database;
- :mod:`~ticktape.runtime.files`: ``TICKTAPE_HOME`` is ours alone; lock files;
- :mod:`~ticktape.runtime.pgkeeper`: the keeper process.
"""
