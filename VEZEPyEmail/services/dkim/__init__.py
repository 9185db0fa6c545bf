"""DKIM signing of outbound mail (RFC 6376) and the DNS record that publishes the key."""
