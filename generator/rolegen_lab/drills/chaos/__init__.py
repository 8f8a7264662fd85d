"""`rolegen lab chaos`: random, seeded schedules of lab faults and operator actions run against the lab under a
write workload, then healed and recovered with documented commands, and judged by a checker that reads only the
lab's observations, the writer's records and the databases (never rolegen's procedure code).

schedule (generator, replay files) and checker and recovery (policy) are pure; runner and watch touch the lab."""
