"""The `ci-admin` command: users and API keys, straight against the database."""
