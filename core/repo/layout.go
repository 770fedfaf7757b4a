package repo

// Object key prefixes outside the snapshot data, owned here with the rest
// of the layout (graphkeep.repo, chunks/, snapshots/, checkpoints/, meta/,
// leases/).
const (
	// HealthPrefix holds probe objects written to check a store (never
	// replicated).
	HealthPrefix = "health/"
	// CheckPrefix names the probe objects of a storage check.
	CheckPrefix = HealthPrefix + "check-"
	// ClaimPrefix holds the claims by which server instances agree who runs
	// a scheduled task for a window (never replicated).
	ClaimPrefix = "schedule/"
	// AutoFailoverClaimPrefix holds the claims of automatic failovers: at
	// most one per window, whoever attempts it.
	AutoFailoverClaimPrefix = ClaimPrefix + "auto-failover/"
)
