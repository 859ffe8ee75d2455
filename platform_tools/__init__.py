"""The developer tools: the `pipeline-platform` CLI, the demo, the Dagster UI runner, the device
simulator, the real-time queries and the demo report. They may import every other package;
nothing imports them."""
