"""Array maths, no I/O: indicators, tick validation, portfolio accounting and
performance metrics. Never imports Faust, Kafka or SQL."""
