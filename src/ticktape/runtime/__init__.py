"""The embedded broker and PostgreSQL processes (and the keeper that stops the
server with its last user), started and stopped as child processes that never
outlive ticktape."""
