"""Configuration: policy files and worker settings."""
