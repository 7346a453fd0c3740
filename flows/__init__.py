"""Prefect flows: contain, decommission, restore, zombie-sweep (one per file, named as verbs).

Flows compose the steps in `killswitch.engine` / `killswitch.restoration`; they never
import a provider SDK. The runtime (inventory, ledger, revokers) is handed over in-process
through `flows.handover`, so flow and task parameters stay small, plain and secret-free:
a flow takes the run id of a plan kept by `killswitch.plans`, never recomputes it.
"""
