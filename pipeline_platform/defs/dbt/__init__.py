"""dbt stage: the dbt project's models and tests as assets and asset checks."""
