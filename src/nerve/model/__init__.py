"""nerve.model."""
