"""The code location's definitions, one module per stage of the lineage."""
