"""Streamlit dashboard: stored runs, one run's price + fills + equity."""
