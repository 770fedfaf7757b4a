// Package retention decides which snapshots to keep (Policy), forgets the
// others (Forget), and deletes the chunks no snapshot names any more
// (Prune).
package retention

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/graphkeep/graphkeep/core/duration"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Policy says which snapshots of a graph to keep. A snapshot is kept when
// any rule keeps it. Counts of 0 disable a rule.
type Policy struct {
	KeepLast    int `json:"keep_last,omitempty" yaml:"keep_last"`
	KeepHourly  int `json:"keep_hourly,omitempty" yaml:"keep_hourly"`
	KeepDaily   int `json:"keep_daily,omitempty" yaml:"keep_daily"`
	KeepWeekly  int `json:"keep_weekly,omitempty" yaml:"keep_weekly"`
	KeepMonthly int `json:"keep_monthly,omitempty" yaml:"keep_monthly"`
	KeepYearly  int `json:"keep_yearly,omitempty" yaml:"keep_yearly"`
	// KeepWithin is read as "7d" (or "168h") in JSON and YAML alike.
	KeepWithin duration.Duration `json:"keep_within,omitempty" yaml:"keep_within"`
}

// ErrEmptyPolicy: a policy with no rule would forget everything.
var ErrEmptyPolicy = &problem.Error{Kind: problem.Invalid, Code: "unprocessable", Remedy: problem.AddRetentionRule,
	Msg: "the retention policy keeps nothing: it needs at least one keep rule"}

// Empty reports whether no rule is set.
func (p Policy) Empty() bool { return p == Policy{} }

// Validate refuses negative counts and an empty policy.
func (p Policy) Validate() error {
	if p.Empty() {
		return ErrEmptyPolicy
	}
	for name, n := range map[string]int{"keep_last": p.KeepLast, "keep_hourly": p.KeepHourly, "keep_daily": p.KeepDaily,
		"keep_weekly": p.KeepWeekly, "keep_monthly": p.KeepMonthly, "keep_yearly": p.KeepYearly} {
		if n < 0 {
			return fmt.Errorf("retention %s is %d: it must be 0 or more", name, n)
		}
	}
	if p.KeepWithin < 0 {
		return fmt.Errorf("retention keep_within is negative")
	}
	return nil
}

func (p Policy) String() string {
	var parts []string
	add := func(name string, n int) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, n))
		}
	}
	add("last", p.KeepLast)
	add("hourly", p.KeepHourly)
	add("daily", p.KeepDaily)
	add("weekly", p.KeepWeekly)
	add("monthly", p.KeepMonthly)
	add("yearly", p.KeepYearly)
	if p.KeepWithin > 0 {
		parts = append(parts, "within "+duration.Format(time.Duration(p.KeepWithin)))
	}
	return strings.Join(parts, ", ")
}

// Decision is the fate of one snapshot.
type Decision struct {
	Snapshot repo.SnapshotRef `json:"snapshot"`
	Keep     bool             `json:"keep"`
	Reasons  []string         `json:"reasons,omitempty"`
}

// Apply decides for the snapshots of one graph. pins maps "graph/id" to
// the checkpoints that pin a snapshot; pinned snapshots are always kept.
// Decisions come newest first.
func Apply(snaps []repo.SnapshotRef, p Policy, pins map[string][]string) []Decision {
	sorted := append([]repo.SnapshotRef(nil), snaps...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID > sorted[j].ID })
	buckets := []struct {
		name  string
		limit int
		key   func(time.Time) string
		seen  map[string]bool
	}{
		{"last", p.KeepLast, nil, nil}, // every snapshot is a bucket of its own
		{"hourly", p.KeepHourly, func(t time.Time) string { return t.Format("2006-01-02T15") }, nil},
		{"daily", p.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") }, nil},
		{"weekly", p.KeepWeekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }, nil},
		{"monthly", p.KeepMonthly, func(t time.Time) string { return t.Format("2006-01") }, nil},
		{"yearly", p.KeepYearly, func(t time.Time) string { return t.Format("2006") }, nil},
	}
	for i := range buckets {
		buckets[i].seen = map[string]bool{}
	}
	var newest time.Time
	if len(sorted) > 0 {
		newest = sorted[0].Time
	}
	out := make([]Decision, 0, len(sorted))
	for i, s := range sorted {
		d := Decision{Snapshot: s}
		for _, cp := range pins[s.Graph+"/"+s.ID] {
			d.Reasons = append(d.Reasons, "pinned by checkpoint "+cp)
		}
		for b := range buckets {
			bk := &buckets[b]
			key := fmt.Sprint(i)
			if bk.key != nil {
				key = bk.key(s.Time.UTC())
			}
			if bk.limit > 0 && !bk.seen[key] && len(bk.seen) < bk.limit {
				bk.seen[key] = true
				d.Reasons = append(d.Reasons, bk.name)
			}
		}
		if within := time.Duration(p.KeepWithin); within > 0 && !s.Time.Before(newest.Add(-within)) {
			d.Reasons = append(d.Reasons, "within "+duration.Format(within))
		}
		d.Keep = len(d.Reasons) > 0
		out = append(out, d)
	}
	return out
}
