"""Command-line front ends. They drive the domain API (shadow.api), never the CPU."""
