"""The singleton controller: reconciles jobs in the database with containers in Docker."""
