"""Streamlit-only helpers shared by the pages: settings (state), cached loaders, sidebar widgets."""
