"""Thin Streamlit entry: `streamlit run dashboards/app.py` (or `ticktape dashboard`)."""

from ticktape.dashboards.nav import main

main()
