"""Shared plumbing: errors, atomic files, provenance, seeding, tracking."""
