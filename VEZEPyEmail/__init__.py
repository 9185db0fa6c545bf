"""VEZEPyEmail: the mail platform (SMTP, JSON API, webmail) on port 8004."""
