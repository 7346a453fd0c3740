"""The sandbox: local stand-ins that speak each provider's wire protocol, and a demo fleet."""

# provider -> the stand-in the sandbox runs for it (the revoker contract test checks both).
STAND_INS = {
    "aws": "moto",
    "vault": "openbao",
    "gcp": "gcp-grpc",
    "azure": "azure-https",
    "slack": "saas",
    "github": "saas",
    "openai": "saas",
    "anthropic": "saas",
}
