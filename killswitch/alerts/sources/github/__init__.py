"""The alert source GitHub sends through: secret-scanning webhooks."""
