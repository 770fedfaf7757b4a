package recovery

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
)

// AutoPolicy is the opt-in automatic failover: when the primary has been
// unreachable for After, promote a HEALTHY target that holds the latest
// checkpoint whole. It never flaps (After is a sustained outage; at most one
// automatic failover per MinInterval), and never promotes a target that
// lacks snapshots the primary had unless AllowDataLoss, saying how many.
type AutoPolicy struct {
	After         time.Duration `json:"after" yaml:"after"`               // default 5m
	MinInterval   time.Duration `json:"min_interval" yaml:"min_interval"` // default 1h
	Interval      time.Duration `json:"interval" yaml:"interval"`         // probe period, default 15s
	ProbeTimeout  time.Duration `json:"probe_timeout" yaml:"probe_timeout"`
	AllowDataLoss bool          `json:"allow_data_loss" yaml:"allow_data_loss"`
	Restore       bool          `json:"restore" yaml:"restore"`
	GraphsRoot    string        `json:"graphs_root" yaml:"graphs_root"`
}

func (p *AutoPolicy) applyDefaults() {
	if p.After <= 0 {
		p.After = 5 * time.Minute
	}
	if p.MinInterval <= 0 {
		p.MinInterval = time.Hour
	}
	if p.Interval <= 0 {
		p.Interval = 15 * time.Second
	}
	if p.ProbeTimeout <= 0 {
		p.ProbeTimeout = 10 * time.Second
	}
}

// AutoEvent is something the monitor noticed or did.
type AutoEvent struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // primary-down, primary-up, failover, refused
	Message string    `json:"message"`
	Outcome *Outcome  `json:"outcome,omitempty"`
}

// Monitor watches a primary and fails over by its policy.
type Monitor struct {
	Policy     AutoPolicy
	PrimaryURL string
	Open       replication.Opener
	// OpenRepo opens a store as the repository (it knows the password).
	OpenRepo func(ctx context.Context, store blob.Store) (*repo.Repository, error)
	// OnSwitch persists a failover for later commands (SaveRedirect).
	OnSwitch func(from, to, repoID string) error
	OnEvent  func(AutoEvent)

	downSince    time.Time
	lastFailover time.Time
	refusedAt    time.Time
	known        known
}

// known is what the monitor learnt while the primary answered.
type known struct {
	targets    []replication.Target
	checkpoint string
	latest     map[string]string // graph -> newest snapshot id
}

// Run steps until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	m.Policy.applyDefaults()
	for {
		m.Step(ctx, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(m.Policy.Interval):
		}
	}
}

// Step looks at the primary once and acts on the policy.
func (m *Monitor) Step(ctx context.Context, now time.Time) {
	m.Policy.applyDefaults()
	r, err := m.openPrimary(ctx)
	if err == nil {
		m.learn(ctx, r)
		r.Store().Close()
		if !m.downSince.IsZero() {
			m.emit(now, "primary-up", fmt.Sprintf("the primary %s answers again after %s", m.PrimaryURL, now.Sub(m.downSince).Round(time.Second)), nil)
		}
		m.downSince = time.Time{}
		return
	}
	if m.downSince.IsZero() {
		m.downSince = now
		m.emit(now, "primary-down", fmt.Sprintf("the primary %s does not answer: %v", m.PrimaryURL, err), nil)
	}
	if now.Sub(m.downSince) < m.Policy.After {
		return
	}
	if !m.lastFailover.IsZero() && now.Sub(m.lastFailover) < m.Policy.MinInterval {
		m.refuse(now, fmt.Sprintf("the last automatic failover was %s ago (minimum interval %s)", now.Sub(m.lastFailover).Round(time.Second), m.Policy.MinInterval))
		return
	}
	m.failover(ctx, now)
}

func (m *Monitor) openPrimary(ctx context.Context) (*repo.Repository, error) {
	ctx, cancel := context.WithTimeout(ctx, m.Policy.ProbeTimeout)
	defer cancel()
	store, err := m.Open(ctx, m.PrimaryURL)
	if err != nil {
		return nil, err
	}
	r, err := m.OpenRepo(ctx, store)
	if err != nil {
		store.Close()
		return nil, err
	}
	return r, nil
}

func (m *Monitor) learn(ctx context.Context, r *repo.Repository) {
	if targets, err := replication.ListTargets(ctx, r); err == nil {
		m.known.targets = targets
	}
	if cp, err := Find(ctx, r, "latest"); err == nil {
		m.known.checkpoint = cp.ID
	}
	if refs, err := r.ListSnapshots(ctx, ""); err == nil {
		m.known.latest = map[string]string{}
		for _, ref := range refs {
			m.known.latest[ref.Graph] = ref.ID
		}
	}
}

// failover promotes the first suitable target, by id.
func (m *Monitor) failover(ctx context.Context, now time.Time) {
	if m.known.checkpoint == "" {
		m.refuse(now, "no checkpoint was seen on the primary: nothing consistent to promote")
		return
	}
	targets := append([]replication.Target(nil), m.known.targets...)
	sort.Slice(targets, func(i, j int) bool { return targets[i].ID < targets[j].ID })
	var reasons []string
	for _, t := range targets {
		replica, why := m.candidate(ctx, t)
		if why != "" {
			reasons = append(reasons, t.ID+": "+why)
			continue
		}
		// Several monitors (server instances) may watch one primary: the
		// first to create this window's claim on the target promotes it; the
		// others follow it.
		claim := fmt.Sprintf("%s%d", repo.AutoFailoverClaimPrefix, now.Unix()/int64(m.Policy.MinInterval.Seconds()))
		if err := blob.PutBytes(ctx, replica.Store(), claim, []byte(now.UTC().Format(time.RFC3339)), &blob.PutOptions{IfAbsent: true}); err != nil {
			replica.Store().Close()
			if errors.Is(err, blob.ErrExists) {
				if m.OnSwitch != nil {
					_ = m.OnSwitch(m.PrimaryURL, t.URL, replica.ID())
				}
				m.emit(now, "failover", fmt.Sprintf("another instance promoted %s; following it", t.ID), nil)
				m.lastFailover, m.PrimaryURL, m.downSince = now, t.URL, time.Time{}
				return
			}
			reasons = append(reasons, t.ID+": claim: "+err.Error())
			continue
		}
		opts := FailoverOptions{Checkpoint: m.known.checkpoint, Restore: m.Policy.Restore, GraphsRoot: m.Policy.GraphsRoot,
			Automatic: true} // never forced: the checkpoint must be whole on the target
		plan, err := PlanFailover(ctx, nil, replica, t, m.PrimaryURL, opts)
		if err != nil {
			reasons = append(reasons, t.ID+": "+err.Error())
			replica.Store().Close()
			continue
		}
		out, err := Failover(ctx, replica, plan, opts)
		replica.Store().Close()
		if err != nil {
			reasons = append(reasons, t.ID+": "+err.Error())
			continue
		}
		if m.OnSwitch != nil {
			if err := m.OnSwitch(m.PrimaryURL, t.URL, replica.ID()); err != nil {
				m.emit(now, "failover", fmt.Sprintf("failed over to %s but could not record it locally: %v", t.ID, err), out)
			}
		}
		m.emit(now, "failover", fmt.Sprintf("the primary %s was unreachable for %s: failed over to %s with checkpoint %s",
			m.PrimaryURL, now.Sub(m.downSince).Round(time.Second), t.ID, m.known.checkpoint), out)
		m.lastFailover, m.PrimaryURL, m.downSince = now, t.URL, time.Time{}
		return
	}
	m.refuse(now, fmt.Sprintf("no target can be promoted: %v", reasons))
}

// candidate opens target t and says why it cannot be promoted ("" when it
// can): it must answer a probe, hold the latest checkpoint, and (unless
// data loss is allowed) every graph's newest snapshot the primary had.
func (m *Monitor) candidate(ctx context.Context, t replication.Target) (*repo.Repository, string) {
	store, err := m.Open(ctx, t.URL)
	if err != nil {
		return nil, "unreachable: " + err.Error()
	}
	if _, err := replication.Probe(ctx, store, m.Policy.ProbeTimeout); err != nil {
		store.Close()
		return nil, "not HEALTHY: " + err.Error()
	}
	replica, err := m.OpenRepo(ctx, store)
	if err != nil {
		store.Close()
		return nil, err.Error()
	}
	if _, err := replica.LoadCheckpoint(ctx, m.known.checkpoint); err != nil {
		store.Close()
		return nil, "does not hold checkpoint " + m.known.checkpoint
	}
	missing := 0
	for g, id := range m.known.latest {
		if ok, _ := blob.Exists(ctx, store, repo.SnapshotRef{Graph: g, ID: id}.Key()); !ok {
			missing++
		}
	}
	if missing > 0 && !m.Policy.AllowDataLoss {
		store.Close()
		return nil, fmt.Sprintf("lacks the newest snapshot of %d graphs: promoting it would lose them (allow_data_loss to accept)", missing)
	}
	return replica, ""
}

func (m *Monitor) refuse(now time.Time, why string) {
	if now.Sub(m.refusedAt) < m.Policy.MinInterval/4 {
		return // say it once in a while, not every probe
	}
	m.refusedAt = now
	m.emit(now, "refused", "automatic failover refused: "+why, nil)
}

func (m *Monitor) emit(now time.Time, kind, msg string, out *Outcome) {
	if m.OnEvent != nil {
		m.OnEvent(AutoEvent{Time: now.UTC(), Kind: kind, Message: msg, Outcome: out})
	}
}
