"""Password checks for the other services (SMTP AUTH in Email), behind a service token."""
