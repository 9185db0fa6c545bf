"""SMTP listeners: inbound MX (RFC 5321), submission with STARTTLS + AUTH (RFC 6409, 3207,
4954, 7628) and implicit-TLS SMTPS (RFC 8314), all built on aiosmtpd inside the Email app."""
