"""Alerts: the second way in. A detector's webhook becomes an authenticated, validated
`Alert` (`receiver`, `sources/`), which playbooks route to contain, ask or notify."""
