"""The embedded local cloud: an AWS emulator and the services it lacks, on loopback."""
