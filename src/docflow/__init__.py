"""Docflow: documents from upload to export, every stage streamed live."""
