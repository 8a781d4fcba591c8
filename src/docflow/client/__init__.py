"""The terminal client: `docflow upload … --follow`, `docflow status`, `docflow export`."""
