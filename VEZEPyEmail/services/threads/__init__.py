"""Conversations: messages grouped by the Message-ID that started them (RFC 5322 section
3.6.4 References / In-Reply-To)."""
