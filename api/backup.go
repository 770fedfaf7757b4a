package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
)

var errNoSuchGraph = errors.New("no such graph")

// source finds a graph the server knows.
func (s *Server) source(id string) (backup.Source, error) {
	sources, err := s.deps.Sources()
	if err != nil {
		return backup.Source{}, err
	}
	for _, src := range sources {
		if src.Graph == id {
			return src, nil
		}
	}
	return backup.Source{}, fmt.Errorf("graph %q: %w (it is not under the graphs root)", id, errNoSuchGraph)
}

// Backup runs one backup and records its metrics (the scheduler uses it
// too).
func (s *Server) Backup(ctx context.Context, src backup.Source, progress func(backup.Progress)) (*repo.Manifest, error) {
	res, err := s.backupResult(ctx, src, progress)
	if err != nil {
		return nil, err
	}
	return res.Manifest, nil
}

func (s *Server) backupResult(ctx context.Context, src backup.Source, progress func(backup.Progress)) (*backup.Result, error) {
	res, err := backup.Create(ctx, s.Repo(), src, s.backupOptions(progress))
	if err != nil {
		return nil, err
	}
	s.m.ObserveBackup(res.Manifest, res.Duration)
	s.view.invalidate()
	return res, nil
}

// backupOptions are the server's backup settings for one run.
func (s *Server) backupOptions(progress func(backup.Progress)) backup.Options {
	o := s.deps.Backup
	o.Progress, o.Lease = progress, s.deps.Lease
	return o
}

// backupResult is the result of a backup job.
type backupResult struct {
	Graph       string    `json:"graph"`
	ID          string    `json:"id"`
	Time        time.Time `json:"time"`
	Files       int       `json:"files"`
	SizeBytes   int64     `json:"size_bytes"`
	AddedBytes  int64     `json:"added_bytes"`
	StoredBytes int64     `json:"stored_bytes"`
	Flagged     bool      `json:"flagged"`
	// MidIngestion and Consistency: how the cut was taken (repo.Consistency).
	MidIngestion bool              `json:"mid_ingestion"`
	Consistency  *repo.Consistency `json:"consistency"`
	LightRAG     any               `json:"lightrag"`
}

func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	src, err := s.source(chi.URLParam(r, "graph_id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.startJob(w, r, "backup", src.Graph, func(ctx context.Context, progress func(backup.Progress)) (any, error) {
		m, err := s.Backup(ctx, src, progress)
		if err != nil {
			return nil, err
		}
		return backupResult{Graph: m.Graph, ID: m.ID, Time: m.Time, Files: m.Totals.Files, SizeBytes: m.Totals.SizeBytes,
			AddedBytes: m.Totals.AddedBytes, StoredBytes: m.Totals.StoredBytes, Flagged: m.Flagged(),
			MidIngestion: m.MidIngestion(), Consistency: m.Consistency, LightRAG: m.LightRAG}, nil
	})
}

// checkGraph refuses a graph that is neither configured nor in the
// repository.
func (s *Server) checkGraph(ctx context.Context, graph string) error {
	var ids []string
	if sources, err := s.deps.Sources(); err == nil {
		for _, src := range sources {
			ids = append(ids, src.Graph)
		}
	}
	return s.Repo().CheckGraph(ctx, graph, ids)
}

func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request) {
	if err := s.checkGraph(r.Context(), chi.URLParam(r, "graph_id")); err != nil {
		writeError(w, r, err)
		return
	}
	body, err := s.view.graphSnapshotsJSON(r.Context(), chi.URLParam(r, "graph_id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// findSnapshot resolves the {id} of a snapshot route.
func (s *Server) findSnapshot(r *http.Request) (repo.SnapshotRef, error) {
	return s.Repo().FindSnapshot(r.Context(), chi.URLParam(r, "graph_id"), chi.URLParam(r, "id"))
}

func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request) {
	ref, err := s.findSnapshot(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	m, err := s.Repo().Cache().Manifest(r.Context(), ref)
	if err != nil {
		writeError(w, r, err)
		return
	}
	type file struct {
		Path   string `json:"path"`
		Type   string `json:"type"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256,omitempty"`
		Chunks int    `json:"chunks"`
	}
	files := make([]file, 0, len(m.Files))
	for _, f := range m.Files {
		files = append(files, file{Path: f.Path, Type: f.Type, Size: f.Size, SHA256: f.SHA256, Chunks: len(f.Chunks)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"snapshot": m.Summary(), "totals": m.Totals, "host": m.Host, "files": files})
}

func (s *Server) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	ref, err := s.findSnapshot(r)
	if err == nil {
		err = retention.DeleteSnapshot(r.Context(), s.Repo(), ref)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.view.invalidate()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) restoreSnapshot(w http.ResponseWriter, r *http.Request) {
	var body struct {
		// To is a directory inside the graphs root or the restore root;
		// default: the graph's own directory.
		To string `json:"to"`
		// AllowFlagged restores a snapshot, named by its id, that is
		// flagged or mid-ingestion.
		AllowFlagged bool `json:"allow_flagged"`
		// Force restores into a directory that holds files but no
		// LightRAG data (kept as an undo copy).
		Force bool `json:"force"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	choice, err := s.Repo().Resolve(r.Context(), chi.URLParam(r, "graph_id"), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	ref := choice.Ref
	if m, err := s.Repo().Cache().Manifest(r.Context(), ref); err != nil || (!m.Good() && !body.AllowFlagged) {
		if err == nil {
			err = fmt.Errorf("snapshot %s/%s is %s: %w", ref.Graph, ref.ID, m.NotGoodReason(), repo.ErrNotGood)
		}
		writeError(w, r, err)
		return
	}
	dest, err := s.restoreDest(ref.Graph, body.To)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.startJob(w, r, "restore", ref.Graph, func(ctx context.Context, progress func(backup.Progress)) (any, error) {
		res, err := backup.Restore(ctx, s.Repo(), ref, dest, backup.RestoreOptions{Progress: progress, AllowNotGood: body.AllowFlagged, Force: body.Force})
		if res != nil {
			res.PassedOver = choice.Passed
		}
		return res, err
	})
}

// restoreDest keeps restores inside the graphs root or the restore root.
// Symlinks are resolved (every existing component of the destination, and
// the roots themselves) before the check, so a link inside a root cannot
// send a restore elsewhere.
func (s *Server) restoreDest(graph, to string) (string, error) {
	if to == "" {
		if src, err := s.source(graph); err == nil {
			return src.Dir, nil
		}
		if s.deps.GraphsRoot == "" {
			return "", errBadRequest("give \"to\": no graphs root is configured")
		}
		return filepath.Join(s.deps.GraphsRoot, graph), nil
	}
	if strings.ContainsRune(to, 0) {
		return "", errBadRequest("\"to\" holds a NUL byte")
	}
	if len(to) > maxPathLen {
		return "", errBadRequest("\"to\" is %d bytes long; paths of at most %d are accepted", len(to), maxPathLen)
	}
	var roots []string
	for _, root := range []string{s.deps.GraphsRoot, s.deps.RestoreRoot} {
		if root != "" {
			roots = append(roots, root)
		}
	}
	candidates := roots
	if !filepath.IsAbs(to) && len(roots) > 0 {
		candidates = roots[:1] // a relative path is relative to the graphs root (else the restore root)
	}
	for _, root := range candidates {
		abs, err := resolveExisting(root)
		if err != nil {
			continue
		}
		dest := to
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(abs, dest)
		}
		real, err := resolveExisting(filepath.Clean(dest))
		if err != nil {
			return "", &Error{Status: http.StatusUnprocessableEntity, Code: "unprocessable", Message: fmt.Sprintf("restore destination %q: %v", to, err)}
		}
		if rel, err := filepath.Rel(abs, real); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			if info, err := os.Stat(real); err == nil && !info.IsDir() {
				return "", &Error{Status: http.StatusUnprocessableEntity, Code: "not_a_directory",
					Message: fmt.Sprintf("restore destination %q is a file, not a directory; name a new or graph directory", to)}
			}
			return real, nil
		}
	}
	return "", &Error{Status: http.StatusUnprocessableEntity, Code: "outside_restore_roots",
		Message: fmt.Sprintf("restores may only write inside %v; %q is not (symlinks resolved)", roots, to)}
}

// maxPathLen bounds a destination path (Linux's PATH_MAX).
const maxPathLen = 4096

// resolveExisting returns p (absolute) with every symlink in its existing
// part resolved; the part that does not exist yet is appended as written.
func resolveExisting(p string) (string, error) {
	p, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for cur := p; ; {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return "", err
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}

func (s *Server) verifySnapshot(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ReadData bool `json:"read_data"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	ref, err := s.findSnapshot(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.startJob(w, r, "verify", ref.Graph, func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		res, err := backup.Verify(ctx, s.Repo(), []repo.SnapshotRef{ref}, backup.VerifyOptions{ReadData: body.ReadData})
		if err == nil && !res.OK() {
			return res, &Error{Status: http.StatusConflict, Code: "damaged", Message: fmt.Sprintf("%d chunks damaged, %d unsafe manifest entries (see the result)", len(res.Damaged), len(res.Unsafe))}
		}
		return res, err
	})
}

func (s *Server) cleanup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Policy *retention.Policy `json:"policy"`
		Graph  string            `json:"graph"`
		DryRun bool              `json:"dry_run"`
		Prune  *bool             `json:"prune"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	policy := s.deps.Retention
	if body.Policy != nil {
		policy = *body.Policy
	}
	if err := policy.Validate(); err != nil {
		writeError(w, r, &Error{Status: http.StatusUnprocessableEntity, Code: "unprocessable", Message: err.Error() + " (in \"policy\", or configure retention:)"})
		return
	}
	if body.Graph != "" && !idPattern.MatchString(body.Graph) {
		writeError(w, r, errBadRequest("graph %q is invalid", body.Graph))
		return
	}
	prune := body.Prune == nil || *body.Prune
	s.startJob(w, r, "cleanup", body.Graph, func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		return s.Cleanup(ctx, body.Graph, policy, body.DryRun, prune)
	})
}

// Cleanup forgets by policy and prunes (the scheduler uses it too).
func (s *Server) Cleanup(ctx context.Context, graph string, policy retention.Policy, dryRun, prune bool) (any, error) {
	out := map[string]any{}
	f, err := retention.Forget(ctx, s.Repo(), graph, policy, dryRun)
	if err != nil {
		return nil, err
	}
	out["forget"] = f
	s.view.invalidate()
	if prune {
		p, err := retention.Prune(ctx, s.Repo(), retention.PruneOptions{DryRun: dryRun, Lease: s.deps.Lease})
		if err != nil {
			return out, err
		}
		out["prune"] = p
	}
	return out, nil
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	st, err := backup.Stats(r.Context(), s.Repo(), r.URL.Query().Get("list") == "true")
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
