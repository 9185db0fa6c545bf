"""Token verification, principals and scope checks shared by every service."""
