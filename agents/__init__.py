"""Faust agents, one thin module per pipeline stage.

replay      run request -> tick batches from the store -> ticks topic
indicators  ticks topic -> validation + indicator columns -> strategy (in memory)
strategy    decisions per tick (pure stage, called in memory)
execution   native engine -> fills, orders, equity -> results topic
sink        results topic -> TimescaleDB/PostgreSQL (idempotent) -> run completion
"""
