"""nerve.report."""
