"""nerve.analysis."""
