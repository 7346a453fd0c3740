"""Fleet containment: many agents at once (a shared secret leaked, a team's agents ran away).
Selected (`selection`), planned once for the whole fleet (`killswitch.planning.plan_fleet`),
fanned out one run per agent (`flows.fleet`, or break-glass threads), reported in one table
built from the ledger (`report`), so a run on any worker on any host counts."""
