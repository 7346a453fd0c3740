"""The sandbox: local stand-ins that speak each provider's wire protocol, and a demo fleet.

The core (this package's modules but the providers' own) names no provider: each revoker
names its stand-in plug-in (`stand_in`), which implements `plugin.StandIn`.
"""
