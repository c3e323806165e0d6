"""nerve.data."""
