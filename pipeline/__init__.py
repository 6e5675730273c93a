"""The main command's machinery: validated configs, the staged pipeline, atomic outputs."""
