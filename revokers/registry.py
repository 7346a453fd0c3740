"""Every provider module, imported once so that its `@revoker` registration runs.

Adding a provider: one module (or package) under revokers/, its stand-in, its tests, its
runbook page, and one line here.
"""

from revokers import anthropic, aws, azure, gcp, github, openai, slack, vault  # noqa: F401
