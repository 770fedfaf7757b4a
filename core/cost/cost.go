// Package cost estimates what a repository's schedule costs on a cloud
// bill: the requests each kind of operation sends per run, how many runs a
// month the schedule makes, and what that comes to at the providers' list
// prices, with the storage the repository and its replicas hold.
//
// The per-run requests follow what graphkeep actually sends (the model is
// checked against counted requests in cost_test.go); the data a backup adds
// is taken from the repository's recent snapshots.
package cost

import (
	"math"
	"time"
)

// Requests are requests by billing class.
type Requests struct {
	// Writes are PUT, COPY, POST and LIST (S3 and GCS class A, Azure write
	// and list operations).
	Writes float64 `json:"writes"`
	// Reads are GET and HEAD (class B, Azure read operations).
	Reads float64 `json:"reads"`
	// Deletes are free on every provider, and counted for completeness.
	Deletes float64 `json:"deletes"`
}

func (r Requests) add(o Requests, times float64) Requests {
	return Requests{Writes: r.Writes + o.Writes*times, Reads: r.Reads + o.Reads*times, Deletes: r.Deletes + o.Deletes*times}
}

// Shape is what the estimate is computed from.
type Shape struct {
	// Graphs are the graphs backed up on a schedule.
	Graphs []Graph
	// Targets is how many replicas the repository has.
	Targets int
	// StoredObjects and StoredBytes are what chunks/ holds (packs of
	// chunks, or chunks stored on their own).
	StoredObjects int64
	StoredBytes   int64
	// Snapshots is how many snapshots the repository holds.
	Snapshots int
	// Intervals of the scheduled tasks; zero for a task that does not run.
	ReplicationInterval time.Duration
	CleanupInterval     time.Duration
	CheckpointInterval  time.Duration
}

// Graph is one scheduled graph.
type Graph struct {
	Name           string
	BackupInterval time.Duration
	// NewObjects is how many objects (packs, or chunks stored on their
	// own) a backup of it stores, on average.
	NewObjects float64
}

// Operation is one kind of scheduled work.
type Operation struct {
	Kind         string   `json:"kind"`
	RunsPerMonth float64  `json:"runs_per_month"`
	PerRun       Requests `json:"requests_per_run"`
	PerMonth     Requests `json:"requests_per_month"`
}

// Price is a provider's list price for the storage class graphkeep uses.
type Price struct {
	Provider string `json:"provider"`
	Class    string `json:"class"`
	// USD per 1,000 requests, and per GB (10^9 bytes) a month.
	WritesPer1000  float64 `json:"writes_per_1000_usd"`
	ReadsPer1000   float64 `json:"reads_per_1000_usd"`
	StorageGBMonth float64 `json:"storage_gb_month_usd"`
}

// ListPrices are the providers' public list prices in a US region (2026):
// S3 Standard, GCS Standard (regional), Azure Blob Hot LRS. Deletes are
// free on all three; egress and minimum-duration charges are left out.
var ListPrices = []Price{
	{Provider: "s3", Class: "S3 Standard, us-east-1", WritesPer1000: 0.005, ReadsPer1000: 0.0004, StorageGBMonth: 0.023},
	{Provider: "gcs", Class: "Standard, us-central1", WritesPer1000: 0.005, ReadsPer1000: 0.0004, StorageGBMonth: 0.020},
	{Provider: "azure", Class: "Hot LRS, East US", WritesPer1000: 0.0065, ReadsPer1000: 0.0005, StorageGBMonth: 0.0184},
}

// Bill is what one provider would charge a month.
type Bill struct {
	Provider string  `json:"provider"`
	Class    string  `json:"class"`
	Requests float64 `json:"requests_usd"`
	Storage  float64 `json:"storage_usd"`
	Total    float64 `json:"total_usd"`
}

// Estimate is a month of the schedule.
type Estimate struct {
	Operations []Operation `json:"operations"`
	PerMonth   Requests    `json:"requests_per_month"`
	// StoredBytes is held by the repository and, as much again, by each
	// replica (on the same provider).
	StoredBytes int64  `json:"stored_bytes"`
	Bills       []Bill `json:"bills"`
}

const month = 30 * 24 * time.Hour

func runs(every time.Duration) float64 {
	if every <= 0 {
		return 0
	}
	return float64(month) / float64(every)
}

// pages is how many list requests list n keys.
func pages(n float64) float64 { return math.Max(1, math.Ceil(n/1000)) }

// The requests one run of each operation sends, as graphkeep sends them
// (leases, the listings a run needs, its writes); cost_test.go counts them.
//
// A scheduled backup of one graph: its lease (put, list of leases,
// delete), the list of running prunes, the list of snapshots, the chunks it
// stores and its manifest. The manifests it reads are in the local cache.
func backupRun(g Graph) Requests {
	return Requests{Writes: 1 + 3 + g.NewObjects + 1, Deletes: 1}
}

// A replication to one target after backups that stored newObjects chunks
// and newSnapshots manifests: leases on both sides, the listings of both
// repositories' snapshots, checkpoints, keys and metadata, both configs
// compared, and for each new object a HEAD on the target, a GET from the
// primary and a PUT.
func replicationRun(newObjects, newSnapshots float64, snapshots int) Requests {
	fixed := Requests{Writes: 2*(1+1) + 1 + pages(float64(snapshots))*2 + 1 + 2 + 2, Reads: 2, Deletes: 2}
	perObject := Requests{Writes: 1, Reads: 2}
	return fixed.add(perObject, newObjects+newSnapshots)
}

// A cleanup: forget lists snapshots and checkpoints and deletes the
// snapshots the policy drops (in a steady state, as many as were taken
// since the last cleanup); prune lists leases, snapshots and every chunk,
// publishes what it will delete and deletes it (in a steady state, what the
// dropped snapshots alone named: about what the backups since added).
func cleanupRun(s Shape, snapshotsPerRun, chunksPerRun float64) Requests {
	forget := Requests{Writes: pages(float64(s.Snapshots)) + 1, Deletes: snapshotsPerRun}
	prune := Requests{Writes: 1 + 1 + 1 + 1 + pages(float64(s.Snapshots))*2 + pages(float64(s.StoredObjects)) + 2 + 1, Reads: 2, Deletes: 1 + 2 + chunksPerRun}
	return forget.add(prune, 1)
}

// Compute estimates a month of s's schedule at each of prices.
func Compute(s Shape, prices []Price) *Estimate {
	e := &Estimate{StoredBytes: s.StoredBytes}
	var backups Operation
	backups.Kind = "backup"
	var newObjects, snapshotsMonth float64
	for _, g := range s.Graphs {
		n := runs(g.BackupInterval)
		backups.RunsPerMonth += n
		backups.PerMonth = backups.PerMonth.add(backupRun(g), n)
		newObjects += g.NewObjects * n
		snapshotsMonth += n
	}
	if backups.RunsPerMonth > 0 {
		backups.PerRun = backups.PerMonth.scale(1 / backups.RunsPerMonth)
	}
	ops := []Operation{backups}
	if n := runs(s.CheckpointInterval); n > 0 {
		// A checkpoint backs up every graph, then writes the checkpoint.
		var per Requests
		for _, g := range s.Graphs {
			per = per.add(backupRun(g), 1)
		}
		per = per.add(Requests{Writes: 2}, 1)
		ops = append(ops, Operation{Kind: "checkpoint", RunsPerMonth: n, PerRun: per, PerMonth: per.scale(n)})
		snapshotsMonth += n * float64(len(s.Graphs))
	}
	if n := runs(s.ReplicationInterval); n > 0 && s.Targets > 0 {
		per := replicationRun(newObjects/n, snapshotsMonth/n, s.Snapshots).scale(float64(s.Targets))
		ops = append(ops, Operation{Kind: "replication", RunsPerMonth: n, PerRun: per, PerMonth: per.scale(n)})
	}
	if n := runs(s.CleanupInterval); n > 0 {
		per := cleanupRun(s, snapshotsMonth/n, newObjects/n)
		ops = append(ops, Operation{Kind: "cleanup", RunsPerMonth: n, PerRun: per, PerMonth: per.scale(n)})
	}
	for _, op := range ops {
		if op.RunsPerMonth > 0 {
			e.Operations = append(e.Operations, op)
			e.PerMonth = e.PerMonth.add(op.PerMonth, 1)
		}
	}
	stored := float64(s.StoredBytes) * float64(1+s.Targets)
	for _, p := range prices {
		b := Bill{Provider: p.Provider, Class: p.Class,
			Requests: e.PerMonth.Writes/1000*p.WritesPer1000 + e.PerMonth.Reads/1000*p.ReadsPer1000,
			Storage:  stored / 1e9 * p.StorageGBMonth}
		b.Total = b.Requests + b.Storage
		e.Bills = append(e.Bills, b)
	}
	return e
}

func (r Requests) scale(f float64) Requests {
	return Requests{Writes: r.Writes * f, Reads: r.Reads * f, Deletes: r.Deletes * f}
}
