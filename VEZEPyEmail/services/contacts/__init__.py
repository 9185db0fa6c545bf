"""Address autocompletion from the people in the caller's own mail."""
