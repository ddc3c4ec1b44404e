"""The streaming pipeline: topics, the Faust app (composition root) and its
patches, run sources, gap recovery, run control, recording, live feeds, the
worker and submitting/watching runs. The agents (``ticktape.agents``) and
tables (``ticktape.tables``) belong to this layer."""
