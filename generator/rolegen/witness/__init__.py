"""Automatic failover arbitrated by a witness at a third site (issue 23; docs/witness.md). What is here so far:
the guards' rules (rules.py), pure and model-checked by tests/witness_sim.py, and the witness Lease client
(lease.py), drilled on the lab's witness site (rolegen_lab); the guard processes come next."""
