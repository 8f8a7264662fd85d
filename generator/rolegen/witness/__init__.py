"""Automatic failover arbitrated by a witness at a third site (issue 23; docs/witness.md). What is here so far:
the guards' rules (rules.py), pure and model-checked by tests/witness_sim.py; the guard processes, the witness
Lease client and the lab's witness site come next."""
