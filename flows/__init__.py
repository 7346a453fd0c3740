"""Prefect flows: contain, restore (one per file, named as verbs).

Flows compose the steps in `killswitch.containment` / `killswitch.restoration`; they never
import a provider SDK. The runtime (inventory, ledger, revokers) is handed over in-process
through `flows.runtime`, so flow and task parameters stay small, plain and secret-free.
"""
