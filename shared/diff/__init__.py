"""Comparing desired with live: normalization, ignore rules, managed fields, quantities and Secret masking."""
