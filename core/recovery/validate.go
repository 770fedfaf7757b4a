package recovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Location states after validation.
const (
	Restorable    = "restorable"
	Missing       = "missing"
	Unreachable   = "unreachable"
	NotThisRepo   = "not-this-repository"
	PrimaryName   = "primary"
	validationDir = "checkpoint-validation"
)

// LocationResult says whether a checkpoint can be restored from one copy.
type LocationResult struct {
	Location string `json:"location"` // "primary" or a target id
	URL      string `json:"url"`
	State    string `json:"state"`
	// MissingObjects counts the checkpoint, manifests and chunks that are
	// not there; Damaged the chunks that are there but do not verify
	// (read-data only).
	MissingObjects int    `json:"missing_objects"`
	Damaged        int    `json:"damaged_objects"`
	Error          string `json:"error,omitempty"`
	// Problems names each missing or damaged object: the key, and for a
	// chunk the snapshots and files that use it (at most maxProblems).
	Problems []ObjectProblem `json:"problems,omitempty"`
}

// ObjectProblem is one object a location lacks or holds damaged.
type ObjectProblem struct {
	Object  string   `json:"object"`
	Problem string   `json:"problem"`
	UsedBy  []string `json:"used_by,omitempty"`
}

// maxProblems bounds the objects a result names (the counts stay whole).
const maxProblems = 20

// Validation is the result of validating one checkpoint everywhere.
type Validation struct {
	Checkpoint string           `json:"checkpoint"`
	Time       time.Time        `json:"validated_at"`
	ReadData   bool             `json:"read_data"`
	Locations  []LocationResult `json:"locations"`
}

// RestorableAt lists the locations the checkpoint can be restored from.
func (v *Validation) RestorableAt() []string {
	var out []string
	for _, l := range v.Locations {
		if l.State == Restorable {
			out = append(out, l.Location)
		}
	}
	return out
}

// Location is one copy of the repository to check.
type Location struct {
	Name  string
	URL   string
	Store blob.Store // nil when it could not be opened
	Err   error      // why it could not be opened
}

// Locations opens the primary's store (already open) and every target.
// The caller closes the target stores.
func Locations(ctx context.Context, r *repo.Repository, open replication.Opener) ([]Location, error) {
	locs := []Location{{Name: PrimaryName, URL: r.Store().Location(), Store: r.Store()}}
	targets, err := replication.ListTargets(ctx, r)
	if err != nil {
		return locs, err
	}
	for _, t := range targets {
		l := Location{Name: t.ID, URL: t.URL}
		l.Store, l.Err = open(ctx, t.URL)
		locs = append(locs, l)
	}
	return locs, nil
}

// Validate checks checkpoint cp on every location: the checkpoint object,
// each snapshot's manifest, every chunk (and with readData, that each chunk
// decodes and hashes right). r provides the keys; it may be a view over a
// replica when the primary is gone.
func Validate(ctx context.Context, r *repo.Repository, cp *repo.Checkpoint, locs []Location, readData bool) *Validation {
	v := &Validation{Checkpoint: cp.ID, Time: time.Now().UTC(), ReadData: readData}
	for _, loc := range locs {
		v.Locations = append(v.Locations, validateAt(ctx, r, cp, loc, readData))
	}
	return v
}

func validateAt(ctx context.Context, r *repo.Repository, cp *repo.Checkpoint, loc Location, readData bool) LocationResult {
	res := LocationResult{Location: loc.Name, URL: loc.URL}
	if loc.Store == nil {
		res.State, res.Error = Unreachable, errString(loc.Err)
		return res
	}
	cfg, ok, err := repo.ReadConfig(ctx, loc.Store)
	switch {
	case err != nil:
		res.State, res.Error = Unreachable, blob.Reason(err)
		return res
	case !ok:
		res.State, res.Error, res.MissingObjects = Missing, "no repository here (empty or wiped)", 1
		return res
	case cfg.ID != r.ID():
		res.State, res.Error = NotThisRepo, "holds repository "+cfg.ID
		return res
	}
	view := r.OnStore(loc.Store, "")
	if there, err := blob.Exists(ctx, loc.Store, repo.CheckpointPrefix+cp.ID); err != nil {
		res.State, res.Error = Unreachable, blob.Reason(err)
		return res
	} else if !there {
		res.MissingObjects++
		res.note(repo.CheckpointPrefix+cp.ID, "missing", nil)
	}
	var refs []repo.SnapshotRef
	for _, s := range cp.Snapshots {
		ref := repo.SnapshotRef{Graph: s.Graph, ID: s.ID}
		there, err := blob.Exists(ctx, loc.Store, ref.Key())
		if err != nil {
			res.State, res.Error = Unreachable, blob.Reason(err)
			return res
		}
		if !there {
			res.MissingObjects++
			res.note(ref.Key(), "missing", []string{s.Graph + "/" + s.ID})
			continue
		}
		refs = append(refs, ref)
	}
	vr, err := backup.Verify(ctx, view, refs, backup.VerifyOptions{ReadData: readData})
	if err != nil {
		res.State, res.Error = Unreachable, blob.Reason(err)
		return res
	}
	// A lost pack damages each of its chunks: count and name objects.
	noted := map[string]int{}
	for _, d := range vr.Damaged {
		if at, ok := noted[d.Object]; ok {
			if at >= 0 {
				p := &res.Problems[at]
				for _, u := range d.UsedBy {
					if !slices.Contains(p.UsedBy, u) && len(p.UsedBy) < 3 {
						p.UsedBy = append(p.UsedBy, u)
					}
				}
			}
			continue
		}
		if d.Problem == "missing" {
			res.MissingObjects++
		} else {
			res.Damaged++
		}
		noted[d.Object] = -1
		if len(res.Problems) < maxProblems {
			noted[d.Object] = len(res.Problems)
		}
		res.note(d.Object, d.Problem, d.UsedBy)
	}
	res.State = Restorable
	if res.MissingObjects > 0 || res.Damaged > 0 {
		res.State = Missing
		var names []string
		for _, p := range res.Problems {
			what := p.Object + " " + p.Problem
			if len(p.UsedBy) > 0 {
				what += " (used by " + strings.Join(p.UsedBy, ", ") + ")"
			}
			names = append(names, what)
		}
		more := ""
		if n := res.MissingObjects + res.Damaged - len(res.Problems); n > 0 {
			more = fmt.Sprintf("; and %d more", n)
		}
		res.Error = fmt.Sprintf("%d objects missing, %d damaged: %s%s", res.MissingObjects, res.Damaged, strings.Join(names, "; "), more)
	}
	return res
}

func (res *LocationResult) note(object, problem string, usedBy []string) {
	if len(res.Problems) < maxProblems {
		if len(usedBy) > 3 {
			usedBy = append(usedBy[:3:3], fmt.Sprintf("%d more", len(usedBy)-3))
		}
		res.Problems = append(res.Problems, ObjectProblem{Object: object, Problem: problem, UsedBy: usedBy})
	}
}

// SaveValidation stores v with the checkpoint (in meta/), so status and
// health can say where it was last found restorable.
func SaveValidation(ctx context.Context, r *repo.Repository, v *Validation) error {
	return r.PutMeta(ctx, validationDir+"/"+v.Checkpoint, v)
}

// LastValidation returns the stored validation of checkpoint id, or nil.
func LastValidation(ctx context.Context, r *repo.Repository, id string) (*Validation, error) {
	var v Validation
	err := r.GetMeta(ctx, validationDir+"/"+id, &v)
	if errors.Is(err, repo.ErrMetaMissing) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
