"""Files the controller puts into every job container beside the project (never imported by
the controller itself: they run inside the container, on the project's Python)."""
