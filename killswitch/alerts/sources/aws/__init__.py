"""The alert sources AWS sends through: EventBridge API destinations and SNS."""
