"""Thin Streamlit entry: `streamlit run dashboards/app.py` (or `ticktape dashboard`)."""

from ticktape.dashboards.page import main

main()
