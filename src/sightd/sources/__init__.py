"""Where image bytes come from: inline (bytes, base64, ``data:`` URIs) or fetched from a URL."""
