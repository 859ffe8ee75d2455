"""Dagster resources: the cloud (AWS or the local emulator), the warehouse and dbt.

`by_environment.build_resources()` maps an environment to them.
"""
