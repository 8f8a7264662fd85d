"""The lab's automatic-failover timers (rolegen_lab.witness_guards), apart so the drills' catalog reads them without
importing what starts the guards (`rolegen --version` imports no YAML)."""

from __future__ import annotations

# Seconds. The lab's Patroni loops every second; these keep the rules' orders (Timers.problems) at a quarter
# of the defaults, so a drill's automatic failover comes within about fence_after + 15 s of the fault.
TIMERS = {"fence_after": 8, "margin": 4, "renew_every": 2, "request_timeout": 1.5}
# The chart's and the spec schema's defaults (what production runs): bench/witness_matrix.py --timers production.
PRODUCTION: dict[str, float] = {"fence_after": 30, "margin": 5, "renew_every": 5, "request_timeout": 4}
LAG_LIMIT = 16 << 20
# A walreceiver notices a link that stopped answering only after wal_receiver_timeout (60 s by default): well
# under fence_after, so a cut tunnel shows as "not streaming" in time.
WAL_RECEIVER_TIMEOUT = "4s"
