"""Tests of the diff: normalization, quantities, managed-fields drift, ignoreDifferences, masking."""
