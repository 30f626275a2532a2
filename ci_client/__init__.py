"""The `ci` command and its HTTP client library."""
