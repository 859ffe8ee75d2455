"""Tests of the developer tools: the CLI, demo, UI runner and device simulator, as processes."""
