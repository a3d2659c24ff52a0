"""lit_nlp.api: field types, models and datasets (stand-in)."""
