"""Automatic failover arbitrated by a witness at a third site (issue 23; docs/witness.md). What is here so far:
the guards' rules (rules.py), pure and model-checked by tests/witness_sim.py, and the witness Lease client
(lease.py); the guard processes and the lab's witness site come next."""
