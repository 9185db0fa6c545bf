"""The webmail's view logic: list rows, highlighting, the message frame, image preferences."""
