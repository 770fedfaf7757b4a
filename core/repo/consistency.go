package repo

import (
	"github.com/graphkeep/graphkeep/core/problem"

	"context"
	"fmt"
	"strings"
	"time"
)

// Consistency is how a snapshot's cut was taken and what the cross-file
// invariants said of it. A manifest written before graphkeep recorded it
// has none (nil): it is taken as consistent.
type Consistency struct {
	// SingleInstant: every file is from one instant of the directory (the
	// cut was checked; graphkeep never stores one that is not).
	SingleInstant bool `json:"single_instant"`
	// Consistent: every invariant holds.
	Consistent bool `json:"consistent"`
	// MidIngestion: the stores disagree (LightRAG was ingesting when the
	// maximum wait passed); LightRAG reprocesses unfinished documents when
	// it starts on such a snapshot.
	MidIngestion bool `json:"mid_ingestion"`
	// Resumable: not every invariant holds, but every one between the
	// graph, vector and chunk stores does, and each stored document that
	// is not processed is pending, processing or failed: LightRAG takes
	// those up again when it starts, so a restore of it loses nothing.
	// Resume names them. A resumable snapshot is good ("latest" may pick
	// it) though not consistent.
	Resumable  bool        `json:"resumable,omitempty"`
	Resume     *Resume     `json:"resume,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	Invariants []Invariant `json:"invariants,omitempty"`
	// QuietMS is how long nothing in the graph had been written at the
	// cut; WaitedMS how long the backup waited for a quiet, consistent
	// moment; CutMS how long taking the cut (open, check, read) took.
	QuietMS  int64 `json:"quiet_ms"`
	WaitedMS int64 `json:"waited_ms"`
	CutMS    int64 `json:"cut_ms"`
	// Attempts is how many cuts were taken before this one was kept.
	Attempts int `json:"attempts"`
	// LastWrite is the newest modification time in the graph at the cut:
	// the moment the stored state was complete.
	LastWrite time.Time `json:"last_write"`
	// Pipeline is what LightRAG's pipeline_status said ("idle", "busy",
	// "unreachable: ..."); empty when no LightRAG server is configured.
	Pipeline string `json:"pipeline,omitempty"`
}

// Flagged reports whether validation found a file that does not parse.
func (m *Manifest) Flagged() bool { return !m.LightRAG.Valid() }

// Resumable reports whether the snapshot was cut in a state LightRAG
// resumes from (Consistency.Resumable).
func (m *Manifest) Resumable() bool { return m.Consistency != nil && m.Consistency.Resumable }

// State names how the snapshot was cut: "flagged", "mid-ingestion",
// "partial", "resumable", "consistent", or "ok" (cut before graphkeep recorded it).
func (m *Manifest) State() string {
	switch {
	case m.Flagged():
		return StateFlagged
	case m.MidIngestion():
		return StateMidIngestion
	case len(m.Missing()) > 0:
		return StatePartial
	case m.Resumable():
		return StateResumable
	case m.Consistency != nil && m.Consistency.Consistent:
		return StateConsistent
	}
	return StateOK
}

// The states of a snapshot (Manifest.State).
const (
	StateFlagged      = "flagged"
	StateMidIngestion = "mid-ingestion"
	StateResumable    = "resumable"
	// StatePartial: the workspace keeps a store elsewhere (Manifest.Missing)
	// that the snapshot does not hold. It is good ("latest" may pick it:
	// no snapshot of the workspace holds more) but never consistent.
	StatePartial    = "partial"
	StateConsistent = "consistent"
	StateOK         = "ok"
)

// MidIngestion reports whether the snapshot was cut while LightRAG's stores
// disagreed.
func (m *Manifest) MidIngestion() bool { return m.Consistency != nil && m.Consistency.MidIngestion }

// Good reports whether the snapshot is one "latest" may pick: neither
// flagged nor mid-ingestion.
func (m *Manifest) Good() bool { return !m.Flagged() && !m.MidIngestion() }

// NotGoodReason says why a snapshot is not good ("" when it is).
func (m *Manifest) NotGoodReason() string {
	switch {
	case m.Flagged():
		return "flagged: " + strings.Join(m.LightRAG.Problems, "; ")
	case m.MidIngestion():
		return "mid-ingestion: " + strings.Join(m.Consistency.Broken(), "; ")
	}
	return ""
}

// ErrNotGood: the snapshot asked for is flagged or mid-ingestion, or a
// graph has no snapshot that is neither.
var ErrNotGood = &problem.Error{Kind: problem.NeedsForce, Code: "not_good", Remedy: problem.AllowNotGood, Msg: "snapshot is flagged or mid-ingestion"}

// PassedOver is a newer snapshot "latest" did not pick, and why.
type PassedOver struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Choice is the snapshot "latest" resolved to.
type Choice struct {
	Ref SnapshotRef `json:"-"`
	ID  string      `json:"id"`
	// Passed lists the newer snapshots that were not good, newest first.
	Passed []PassedOver `json:"passed_over,omitempty"`
}

// LatestGood returns graph's newest good snapshot among refs (any graphs',
// sorted as ListSnapshots sorts them), with the newer ones it passed over.
// ok is false when graph has no snapshot at all; a graph whose snapshots
// are all flagged or mid-ingestion is an ErrNotGood error that names them.
func (r *Repository) LatestGood(ctx context.Context, graph string, refs []SnapshotRef) (c Choice, ok bool, err error) {
	var mine []SnapshotRef
	for _, s := range refs {
		if s.Graph == graph {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		return Choice{}, false, nil
	}
	found := false
	err = r.newestFirst(ctx, mine, func(m *Manifest) bool {
		switch {
		case m.UndoOf != "":
			c.Passed = append(c.Passed, PassedOver{ID: m.ID, Reason: "an undo copy of the state the restore of " + m.UndoOf + " replaced (restore it by its id)"})
			return true
		case m.Good():
			c.Ref, c.ID, found = m.Ref(), m.ID, true
			return false
		}
		c.Passed = append(c.Passed, PassedOver{ID: m.ID, Reason: m.NotGoodReason()})
		return true
	})
	switch {
	case err != nil:
		return Choice{}, true, err
	case found:
		return c, true, nil
	case len(c.Passed) == 0:
		return c, true, fmt.Errorf("graph %q: every snapshot was forgotten since the listing: %w", graph, ErrSnapshotMissing)
	}
	return c, true, fmt.Errorf("graph %q has no snapshot that is neither flagged nor mid-ingestion (%d passed over, newest %s: %s): %w",
		graph, len(c.Passed), c.Passed[0].ID, c.Passed[0].Reason, ErrNotGood)
}
