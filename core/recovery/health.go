package recovery

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/graphkeep/graphkeep/core/duration"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Overall states.
const (
	StateHealthy  = "HEALTHY"
	StateDegraded = "DEGRADED"
	StateCritical = "CRITICAL"
)

// HealthOptions say what "on schedule" means.
type HealthOptions struct {
	// BackupInterval is how often each graph should be backed up; a graph
	// whose last good snapshot is older than two intervals is stale.
	// Default 24h.
	BackupInterval time.Duration
	// GraphIntervals override BackupInterval for single graphs (zero or
	// absent: BackupInterval).
	GraphIntervals map[string]time.Duration
	// Graphs are the graphs that should have backups (known from the graphs
	// root); a graph with none is a reason.
	Graphs []string
}

// Health is the whole system at a glance, with the reasons behind it.
type Health struct {
	Status  string   `json:"status"`
	Reasons []string `json:"reasons"`
	// Findings are the reasons with their state and what would help, for
	// front ends to say in their own words (Reasons[i] is Findings[i]'s).
	Findings   []Finding         `json:"findings"`
	Primary    PrimaryHealth     `json:"primary"`
	Targets    []TargetHealth    `json:"targets"`
	Graphs     []GraphHealth     `json:"graphs"`
	Checkpoint *CheckpointHealth `json:"checkpoint,omitempty"`
	Failovers  []Switch          `json:"failovers,omitempty"`
	checked    time.Time
}

// PrimaryHealth is the primary's reachability.
type PrimaryHealth struct {
	URL       string `json:"url"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

// TargetHealth is one target's state and lag.
type TargetHealth struct {
	ID           string  `json:"id"`
	Status       string  `json:"status"`
	LagSnapshots int     `json:"lag_snapshots"`
	LagBytes     int64   `json:"lag_bytes"`
	RPOSeconds   float64 `json:"rpo_seconds"`
	Error        string  `json:"error,omitempty"`
}

// MarshalJSON writes an unknown lag (LagSnapshots < 0: the target did not
// answer) as null, as every other figure not known is, never as -1.
func (t TargetHealth) MarshalJSON() ([]byte, error) {
	type plain TargetHealth
	out := struct {
		plain
		LagSnapshots *int     `json:"lag_snapshots"`
		LagBytes     *int64   `json:"lag_bytes"`
		RPOSeconds   *float64 `json:"rpo_seconds"`
	}{plain: plain(t)}
	if t.LagSnapshots >= 0 {
		out.LagSnapshots, out.LagBytes, out.RPOSeconds = &t.LagSnapshots, &t.LagBytes, &t.RPOSeconds
	}
	return json.Marshal(out)
}

// GraphHealth is one graph's last good snapshot against its schedule.
type GraphHealth struct {
	Graph        string `json:"graph"`
	LastSnapshot string `json:"last_snapshot,omitempty"`
	// AgeSeconds is the last snapshot's age; null when there is none.
	AgeSeconds *float64 `json:"age_seconds"`
	Stale      bool     `json:"stale"`
	Flagged    bool     `json:"latest_flagged"`
	// MidIngestion: the newest snapshot was cut while LightRAG's stores
	// disagreed; Consistency says how it was cut.
	MidIngestion bool              `json:"latest_mid_ingestion"`
	Consistency  *repo.Consistency `json:"latest_consistency,omitempty"`
	// LastGood is the snapshot "latest" restores, and its age.
	LastGood           string   `json:"last_good,omitempty"`
	LastGoodAgeSeconds *float64 `json:"last_good_age_seconds,omitempty"`
	// ScheduleSeconds is the graph's backup interval: it is stale once its
	// last snapshot is older than two.
	ScheduleSeconds float64 `json:"schedule_seconds"`
}

// intervalOf is graph's backup interval.
func (o HealthOptions) intervalOf(graph string) time.Duration {
	if d := o.GraphIntervals[graph]; d > 0 {
		return d
	}
	return o.BackupInterval
}

// CheckpointHealth is the latest checkpoint's age and where it restores.
type CheckpointHealth struct {
	ID           string    `json:"id"`
	AgeSeconds   float64   `json:"age_seconds"`
	RestorableAt []string  `json:"restorable_at"`
	ValidatedAt  time.Time `json:"validated_at,omitempty"`
}

// Finding is one reason for the health's state.
type Finding struct {
	State  string         `json:"state"`
	Reason string         `json:"reason"`
	Remedy problem.Remedy `json:"remedy,omitempty"`
	// Object is what the remedy acts on (a graph, target or checkpoint).
	Object string `json:"object,omitempty"`
}

func (h *Health) add(state string, remedy problem.Remedy, object, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	h.Reasons = append(h.Reasons, reason)
	h.Findings = append(h.Findings, Finding{State: state, Reason: reason, Remedy: remedy, Object: object})
	if state == StateCritical || (state == StateDegraded && h.Status == StateHealthy) {
		h.Status = state
	}
}

// PrimaryDown is the health of a system whose primary cannot be opened.
func PrimaryDown(url string, err error) *Health {
	h := &Health{Status: StateHealthy, Primary: PrimaryHealth{URL: url, Error: err.Error()}}
	h.add(StateCritical, problem.FailOver, "", "the primary repository %s is unreachable: %v; fail over to a healthy target", url, err)
	return h
}

// SystemHealth checks the primary (r, already open), every target, every
// graph's last good snapshot, and the latest checkpoint.
func SystemHealth(ctx context.Context, r *repo.Repository, open replication.Opener, opts HealthOptions) (*Health, error) {
	if opts.BackupInterval <= 0 {
		opts.BackupInterval = 24 * time.Hour
	}
	now := time.Now()
	h := &Health{Status: StateHealthy, Primary: PrimaryHealth{URL: r.Store().Location(), Reachable: true},
		Targets: []TargetHealth{}, Graphs: []GraphHealth{}}

	targets, err := replication.ListTargets(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		th := TargetHealth{ID: t.ID, Status: replication.Unknown, LagSnapshots: -1}
		dst, err := open(ctx, t.URL)
		if err == nil {
			lag, lerr := replication.ComputeLag(ctx, r, t, dst, "")
			dst.Close()
			err = lerr
			if lag != nil {
				th.LagSnapshots, th.LagBytes, th.RPOSeconds = lag.Snapshots, lag.Bytes, lag.RPOSeconds
			}
		}
		if err != nil {
			th.Error = err.Error()
		}
		// One source of truth: this look is one more outcome of the shared
		// status (with its hysteresis), which targets list shows too.
		if st, rerr := replication.Record(ctx, r, t.ID, err, 0, replication.Hysteresis{}); rerr == nil {
			th.Status = st.State
		} else if err != nil {
			th.Status = replication.Unreachable // the primary cannot record it: say what was seen
		}
		h.Targets = append(h.Targets, th)
		switch {
		case err != nil:
			h.add(StateDegraded, problem.NoRemedy, t.ID, "target %s is %s: %s", t.ID, th.Status, th.Error)
		case th.Status == replication.Unreachable:
			h.add(StateDegraded, problem.NoRemedy, t.ID, "target %s is unreachable: %s", t.ID, th.Error)
		case th.Status != replication.Healthy && th.Status != replication.Unknown:
			h.add(StateDegraded, problem.NoRemedy, t.ID, "target %s is %s", t.ID, th.Status)
		case th.LagSnapshots > 0:
			h.add(StateDegraded, problem.Replicate, t.ID, "target %s is %d snapshots behind (RPO %s)", t.ID, th.LagSnapshots, seconds(th.RPOSeconds))
		}
	}

	refs, err := r.ListSnapshots(ctx, "")
	if err != nil {
		return nil, err
	}
	latest := map[string]repo.SnapshotRef{}
	for _, ref := range refs {
		latest[ref.Graph] = ref
	}
	graphs := map[string]bool{}
	for _, g := range opts.Graphs {
		graphs[g] = true
	}
	for g := range latest {
		graphs[g] = true
	}
	var names []string
	for g := range graphs {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		every := opts.intervalOf(g)
		gh := GraphHealth{Graph: g, ScheduleSeconds: every.Seconds()}
		ref, ok := latest[g]
		if !ok {
			gh.Stale = true
			h.Graphs = append(h.Graphs, gh)
			h.add(StateCritical, problem.BackUp, g, "graph %s has never been backed up", g)
			continue
		}
		ref, _, _ = r.Latest(ctx, g, refs)
		m, err := r.Cache().Manifest(ctx, ref)
		if err != nil {
			return nil, err
		}
		age := now.Sub(m.Time).Seconds()
		gh.LastSnapshot, gh.AgeSeconds = ref.ID, &age
		gh.Flagged, gh.MidIngestion, gh.Consistency = m.Flagged(), m.MidIngestion(), m.Consistency
		gh.Stale = now.Sub(m.Time) > 2*every
		if c, _, err := r.LatestGood(ctx, g, refs); err == nil {
			gm, err := r.Cache().Manifest(ctx, c.Ref)
			if err != nil {
				return nil, err
			}
			age := now.Sub(gm.Time).Seconds()
			gh.LastGood, gh.LastGoodAgeSeconds = c.ID, &age
		} else {
			h.add(StateCritical, problem.BackUp, g, "graph %s has no snapshot that is neither flagged nor mid-ingestion: 'latest' has nothing to restore", g)
		}
		h.Graphs = append(h.Graphs, gh)
		if gh.MidIngestion {
			h.add(StateDegraded, problem.NoRemedy, g, "graph %s: the latest snapshot was cut mid-ingestion (%s); restores use %s", g, m.Consistency.Reason, orNone(gh.LastGood))
		}
		if gh.Stale {
			h.add(StateDegraded, problem.BackUp, g, "graph %s: last snapshot is %s old, more than twice the %s schedule", g, duration.Age(now.Sub(m.Time)), duration.Format(every))
		}
		if gh.Flagged {
			h.add(StateDegraded, problem.NoRemedy, g, "graph %s: the latest snapshot is flagged by LightRAG validation: %v", g, m.LightRAG.Problems)
		}
	}

	cps, err := Checkpoints(ctx, r)
	if err != nil {
		return nil, err
	}
	if len(cps) == 0 {
		h.add(StateDegraded, problem.CreateCheckpoint, "", "no recovery checkpoint")
	} else {
		cp := cps[0]
		ch := &CheckpointHealth{ID: cp.ID, AgeSeconds: now.Sub(cp.Time).Seconds(), RestorableAt: []string{}}
		if v, err := LastValidation(ctx, r, cp.ID); err == nil && v != nil {
			ch.RestorableAt, ch.ValidatedAt = v.RestorableAt(), v.Time
			if len(ch.RestorableAt) == 0 {
				h.add(StateCritical, problem.CreateCheckpoint, "", "the latest checkpoint %s was restorable nowhere when validated at %s", cp.ID, v.Time.Format(time.RFC3339))
			}
		} else {
			h.add(StateDegraded, problem.ValidateCheckpoint, cp.ID, "the latest checkpoint %s has not been validated", cp.ID)
		}
		if now.Sub(cp.Time) > 2*opts.BackupInterval {
			h.add(StateDegraded, problem.CreateCheckpoint, "", "the latest checkpoint %s is %s old, more than twice the %s schedule", cp.ID, duration.Age(now.Sub(cp.Time)), duration.Format(opts.BackupInterval))
		}
		h.Checkpoint = ch
	}
	if sw, err := History(ctx, r); err == nil {
		h.Failovers = sw
	}
	if h.Reasons == nil {
		h.Reasons, h.Findings = []string{}, []Finding{}
	}
	return h, nil
}

func orNone(id string) string {
	if id == "" {
		return "none"
	}
	return id
}

// seconds shows a duration given in seconds as an age.
func seconds(s float64) string { return duration.Age(time.Duration(s * float64(time.Second))) }
