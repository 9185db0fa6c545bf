"""Per-user mail rules: a bounded subset of Sieve (RFC 5228) with fileinto, imap4flags (RFC
5232) and vacation (RFC 5230), parsed with sievelib and evaluated at local delivery."""
