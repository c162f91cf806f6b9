"""Data: download and verification, format conversion, readers and statistics."""
