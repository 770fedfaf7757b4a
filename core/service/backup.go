package service

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/cost"
	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
)

// ErrNoSuchGraph: a graph this machine does not know.
var ErrNoSuchGraph = problem.New(problem.NotFound, "not_found", "no such graph")

// BackupResult is one graph's backup: the one shape of `backup --json`, the
// API's backup jobs and the metrics.
type BackupResult struct {
	Graph        string            `json:"graph"`
	ID           string            `json:"id,omitempty"`
	Time         time.Time         `json:"time"`
	Files        int               `json:"files"`
	SizeBytes    int64             `json:"size_bytes"`
	AddedBytes   int64             `json:"added_bytes"`
	StoredBytes  int64             `json:"stored_bytes"`
	ReusedFiles  int               `json:"reused_files"`
	DurationMS   int64             `json:"duration_ms"`
	Flagged      bool              `json:"flagged"`
	Consistent   bool              `json:"consistent"`
	MidIngestion bool              `json:"mid_ingestion"`
	Consistency  *repo.Consistency `json:"consistency,omitempty"`
	LightRAG     *repo.GraphCounts `json:"lightrag,omitempty"`
	// Source is "files", "postgres" or "postgres+files"; Tables counts a
	// graph's PostgreSQL tables; Missing names the stores its workspace
	// keeps elsewhere (the snapshot is partial).
	Source  string       `json:"source"`
	Tables  int          `json:"tables,omitempty"`
	Missing []repo.Store `json:"missing,omitempty"`
	// Error is why this graph's backup failed (the others went on).
	Error string `json:"error,omitempty"`
}

func backupResult(res *backup.Result) *BackupResult {
	m := res.Manifest
	return &BackupResult{Graph: m.Graph, ID: m.ID, Time: m.Time, Files: m.Totals.Files, SizeBytes: m.Totals.SizeBytes,
		AddedBytes: m.Totals.AddedBytes, StoredBytes: m.Totals.StoredBytes, ReusedFiles: res.ReusedFiles,
		DurationMS: res.Duration.Milliseconds(), Flagged: m.Flagged(), Consistent: m.Consistency != nil && m.Consistency.Consistent,
		MidIngestion: m.MidIngestion(), Consistency: m.Consistency, LightRAG: m.LightRAG,
		Source: m.SourceKind(), Tables: m.Totals.Tables, Missing: m.Missing()}
}

// BackupRequest names what to back up.
type BackupRequest struct {
	Graphs []string // by id; or
	All    bool     // every known graph
	// Replicate then copies the new snapshots to every target; a target
	// outage is reported in ReplicationError, never a failed backup.
	Replicate bool
	// Progress, when set, gives each graph's progress callback.
	Progress func(graph string) func(backup.Progress)
}

// BackupReport is what a BackupRequest did.
type BackupReport struct {
	Results          []*BackupResult       `json:"results"`
	Failed           int                   `json:"failed"`
	Replication      []*replication.Result `json:"replication,omitempty"`
	ReplicationError string                `json:"replication_error,omitempty"`
	// Skipped are folders under the graphs root whose names are not graph
	// ids (with All).
	Skipped []string `json:"skipped,omitempty"`
}

// Backup snapshots the graphs the request names, one after the other; a
// graph that fails does not stop the others (see Failed).
func (s *Service) Backup(ctx context.Context, req BackupRequest) (*BackupReport, error) {
	if req.All == (len(req.Graphs) > 0) {
		return nil, problem.Errorf(problem.Invalid, problem.NoRemedy, "", "name the graphs to back up, or all of them")
	}
	// Opening the primary here (a CLI backup) takes the backup's lease
	// while the key is derived; an open primary (the server) takes it in
	// the backup.
	held, err := s.openLeased(ctx, "backup")
	if err != nil {
		return nil, err
	}
	if held != nil {
		defer held.Release()
	}
	sources, skipped, err := s.pick(req.Graphs, req.All, "back up")
	if err != nil {
		return nil, err
	}
	out := &BackupReport{Skipped: skipped}
	for _, o := range s.backupAll(ctx, sources, req.Progress, held) {
		if o.Err != nil {
			out.Failed++
			out.Results = append(out.Results, &BackupResult{Graph: o.Graph, Error: o.Err.Error()})
			continue
		}
		out.Results = append(out.Results, backupResult(o.Result))
	}
	if req.Replicate && out.Failed < len(sources) {
		res, err := s.Replicate(ctx, "", "")
		out.Replication = res
		if err != nil {
			out.ReplicationError = err.Error()
		}
	}
	if out.Failed > 0 {
		return out, problem.Errorf(problem.Internal, problem.NoRemedy, "", "%d of %d graphs failed to back up", out.Failed, len(sources))
	}
	return out, nil
}

// BackupSource snapshots one graph (the scheduler, the jobs and continuous
// protection use it).
func (s *Service) BackupSource(ctx context.Context, src backup.Source, progress func(backup.Progress)) (*BackupResult, error) {
	res, err := s.backupRaw(ctx, src, progress)
	if err != nil {
		return nil, err
	}
	return backupResult(res), nil
}

func (s *Service) backupRaw(ctx context.Context, src backup.Source, progress func(backup.Progress)) (*backup.Result, error) {
	var byGraph func(string) func(backup.Progress)
	if progress != nil {
		byGraph = func(string) func(backup.Progress) { return progress }
	}
	o := s.backupAll(ctx, []backup.Source{src}, byGraph, nil)[0]
	return o.Result, o.Err
}

// backupAll snapshots sources together (backup.CreateAll), reporting each
// graph's progress to progress(graph) when set, under held when set (else a
// lease of its own).
func (s *Service) backupAll(ctx context.Context, sources []backup.Source, progress func(graph string) func(backup.Progress), held *repo.Lease) []backup.Outcome {
	r, err := s.Primary(ctx)
	if err != nil {
		out := make([]backup.Outcome, len(sources))
		for i, src := range sources {
			out[i] = backup.Outcome{Graph: src.Graph, Err: err}
		}
		return out
	}
	opts := s.cfg.Backup
	opts.Lease, opts.Held = s.cfg.Lease, held
	if progress != nil {
		perGraph := make(map[string]func(backup.Progress), len(sources))
		for _, src := range sources {
			if p := progress(src.Graph); p != nil {
				perGraph[src.Graph] = p
			}
		}
		opts.Progress = func(p backup.Progress) {
			if f := perGraph[p.Graph]; f != nil {
				f(p)
			}
		}
	}
	out := backup.CreateAll(ctx, r, sources, opts)
	for _, o := range out {
		if o.Err == nil && s.cfg.Hooks.Snapshot != nil {
			s.cfg.Hooks.Snapshot(o.Result.Manifest, o.Result.Duration)
		}
	}
	s.changed()
	return out
}

// Sources lists the graphs this machine knows.
func (s *Service) Sources() ([]backup.Source, error) { return s.cfg.Sources() }

// Source finds one known graph.
func (s *Service) Source(id string) (backup.Source, error) {
	if err := repo.CheckGraphID(id); err != nil {
		return backup.Source{}, err
	}
	all, err := s.cfg.Sources()
	if err != nil {
		return backup.Source{}, err
	}
	for _, src := range all {
		if src.Graph == id {
			return src, nil
		}
	}
	return backup.Source{}, s.unknownGraph(id, all)
}

func (s *Service) unknownGraph(id string, all []backup.Source) error {
	e := &problem.Error{Kind: problem.NotFound, Code: "not_found", Object: id, Err: ErrNoSuchGraph}
	switch {
	case len(all) > 0:
		var ids []string
		for _, src := range all {
			ids = append(ids, src.Graph)
		}
		e.Msg = fmt.Sprintf("graph %q is unknown: known graphs: %s (it is not under the graphs root)", id, strings.Join(ids, ", "))
	case s.cfg.GraphsRoot == "":
		e.Msg, e.Remedy = fmt.Sprintf("graph %q is unknown: no graphs are configured", id), problem.SetGraphsRoot
	default:
		e.Msg = fmt.Sprintf("graph %q is unknown: the graphs root %s holds no graph directories", id, s.cfg.GraphsRoot)
	}
	return e
}

// pick resolves graph ids (or every known graph) to sources.
func (s *Service) pick(ids []string, all bool, what string) (sources []backup.Source, skipped []string, err error) {
	if all {
		if sources, err = s.cfg.Sources(); err != nil {
			return nil, nil, err
		}
		if s.cfg.GraphsRoot != "" {
			skipped, _ = backup.Skipped(s.cfg.GraphsRoot)
		}
		if len(sources) == 0 {
			if s.cfg.GraphsRoot == "" {
				return nil, skipped, problem.Errorf(problem.Invalid, problem.SetGraphsRoot, "", "nothing to %s: no graphs are configured", what)
			}
			return nil, skipped, problem.Errorf(problem.Invalid, problem.NoRemedy, s.cfg.GraphsRoot, "nothing to %s: the graphs root %s holds no graph directories", what, s.cfg.GraphsRoot)
		}
		return sources, skipped, nil
	}
	for _, id := range ids {
		src, err := s.Source(id)
		if err != nil {
			return nil, nil, err
		}
		sources = append(sources, src)
	}
	return sources, nil, nil
}

// checkGraph refuses a graph that is neither configured nor in r ("" is
// every graph).
func (s *Service) checkGraph(ctx context.Context, r *repo.Repository, graph string) error {
	var ids []string
	if sources, err := s.cfg.Sources(); err == nil {
		for _, src := range sources {
			ids = append(ids, src.Graph)
		}
	}
	return r.CheckGraph(ctx, graph, ids)
}

// CheckGraph refuses a graph that is neither known here nor in the
// repository ("" is every graph).
func (s *Service) CheckGraph(ctx context.Context, graph string) error {
	r, err := s.Primary(ctx)
	if err != nil {
		return err
	}
	return s.checkGraph(ctx, r, graph)
}

// Snapshots lists graph's snapshots ("" for every graph), oldest first.
func (s *Service) Snapshots(ctx context.Context, graph string) ([]repo.Summary, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.checkGraph(ctx, r, graph); err != nil {
		return nil, err
	}
	refs, err := r.ListSnapshots(ctx, graph)
	if err != nil {
		return nil, err
	}
	infos, err := r.Cache().Infos(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := make([]repo.Summary, len(infos))
	for i, info := range infos {
		out[i] = info.Summary
	}
	return out, nil
}

// SnapshotDetail is one snapshot with its files.
type SnapshotDetail struct {
	Snapshot repo.Summary   `json:"snapshot"`
	Totals   repo.Totals    `json:"totals"`
	Host     string         `json:"host"`
	Files    []SnapshotFile `json:"files"`
	// A graph in PostgreSQL: where its tables came from, and where each
	// kind of LightRAG store is.
	Postgres *repo.PostgresSource `json:"postgres,omitempty"`
	Stores   []repo.Store         `json:"stores,omitempty"`
}

// SnapshotFile is one file of a snapshot.
type SnapshotFile struct {
	Path string `json:"path"`
	Type string `json:"type"`
	Size int64  `json:"size"`
	// SHA256 (repositories of formats 1 and 2) or BLAKE3 (format 3) is
	// the hash of the file's content: sha256sum or b3sum prints it.
	SHA256 string `json:"sha256,omitempty"`
	BLAKE3 string `json:"blake3,omitempty"`
	Chunks int    `json:"chunks"`
}

// Snapshot shows one snapshot ("latest", an id or a unique prefix).
func (s *Service) Snapshot(ctx context.Context, graph, id string) (*SnapshotDetail, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	ref, err := r.FindSnapshot(ctx, graph, id)
	if err != nil {
		return nil, err
	}
	m, err := r.Cache().Manifest(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := &SnapshotDetail{Snapshot: m.Summary(), Totals: m.Totals, Host: m.Host, Files: make([]SnapshotFile, 0, len(m.Files)),
		Postgres: m.Postgres, Stores: m.Stores}
	for _, f := range m.Files {
		out.Files = append(out.Files, SnapshotFile{Path: f.Path, Type: f.Type, Size: f.Size, SHA256: f.SHA256, BLAKE3: f.BLAKE3, Chunks: len(f.Chunks)})
	}
	return out, nil
}

// VerifyRequest names the snapshots to verify: every snapshot, a graph's,
// or one.
type VerifyRequest struct {
	Graph, Snapshot string
	ReadData        bool
}

// ErrDamaged: verification found damage; the result says where.
var ErrDamaged = &problem.Error{Kind: problem.Damaged, Code: "damaged", Remedy: problem.RestoreFromReplica, Msg: "damage found"}

// Verify checks that every chunk of the snapshots exists (and, with
// ReadData, is intact). Damage is an ErrDamaged error beside the result.
func (s *Service) Verify(ctx context.Context, req VerifyRequest) (*backup.VerifyResult, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	if req.Graph != "" {
		if err := s.checkGraph(ctx, r, req.Graph); err != nil {
			return nil, err
		}
	}
	var refs []repo.SnapshotRef
	if req.Snapshot != "" {
		ref, err := r.FindSnapshot(ctx, req.Graph, req.Snapshot)
		if err != nil {
			return nil, err
		}
		refs = []repo.SnapshotRef{ref}
	} else if refs, err = r.ListSnapshots(ctx, req.Graph); err != nil {
		return nil, err
	}
	res, err := backup.Verify(ctx, r, refs, backup.VerifyOptions{ReadData: req.ReadData})
	if err != nil {
		return nil, err
	}
	if !res.OK() {
		remedy := problem.RestoreFromReplica
		if len(res.Damaged) == 0 {
			remedy = problem.RemoveDamaged
		}
		return res, fmt.Errorf("%w: %d of %d chunks damaged, %d unsafe manifest entries", ErrDamaged.With(req.Graph, remedy), len(res.Damaged), res.Chunks, len(res.Unsafe))
	}
	return res, nil
}

// StatsResult is what the repository holds and the requests this process
// made to its storage.
type StatsResult struct {
	Repository *backup.RepoStats `json:"repository"`
	// Requests are what this process has sent to the repository's store.
	Requests blob.RequestStats `json:"requests"`
	// Monthly prices the schedule: requests per operation kind and a month
	// of them, with storage, at S3, GCS and Azure list prices.
	Monthly *cost.Estimate `json:"monthly_estimate"`
}

// Stats reports the repository; list also lists chunks/ for the stored
// size.
func (s *Service) Stats(ctx context.Context, list bool) (*StatsResult, error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	st, err := backup.Stats(ctx, r, list)
	if err != nil {
		return nil, err
	}
	targets, err := replication.ListTargets(ctx, r)
	if err != nil {
		return nil, err
	}
	requests, _ := blob.StatsOf(r.Store())
	return &StatsResult{Repository: st, Requests: requests, Monthly: cost.Compute(s.costShape(st, len(targets)), cost.ListPrices)}, nil
}

// costShape is what the cost estimate needs of the repository and the
// schedule.
func (s *Service) costShape(st *backup.RepoStats, targets int) cost.Shape {
	sh := cost.Shape{Targets: targets, Snapshots: st.Snapshots, StoredObjects: int64(st.Objects), StoredBytes: st.UniqueBytes,
		ReplicationInterval: s.cfg.Schedule.ReplicationInterval, CleanupInterval: s.cfg.Schedule.CleanupInterval,
		CheckpointInterval: s.cfg.Schedule.CheckpointInterval}
	if st.StoredChunks != nil {
		sh.StoredObjects, sh.StoredBytes = int64(*st.StoredChunks), *st.StoredBytes
	}
	// The plaintext an object holds: a pack's chunks, or one chunk.
	objectSize := 1.0
	if st.Objects > 0 {
		objectSize = float64(st.UniqueBytes) / float64(st.Objects)
	}
	for _, g := range st.Graphs {
		every := s.cfg.BackupInterval
		if d, ok := s.cfg.Schedule.GraphIntervals[g.Graph]; ok {
			every = d
		}
		var added float64
		if g.AddedBytes != nil {
			added = float64(*g.AddedBytes)
		}
		sh.Graphs = append(sh.Graphs, cost.Graph{Name: g.Graph, BackupInterval: every, NewObjects: math.Ceil(added / objectSize)})
	}
	return sh
}

// InitOptions are the parameters of a new repository.
type InitOptions = repo.InitOptions

// InitResult names the repository created.
type InitResult struct {
	ID        string `json:"id"`
	Location  string `json:"location"`
	Encrypted bool   `json:"encrypted"`
	// Lock is the object lock policy (asked for, or the bucket's default).
	Lock *repo.LockPolicy `json:"lock,omitempty"`
}

// Init creates the repository at the primary URL (a local folder is
// created first).
func (s *Service) Init(ctx context.Context, opts InitOptions) (*InitResult, error) {
	url, _, err := s.PrimaryURL()
	if err != nil {
		return nil, err
	}
	if dir := localDir(url); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create repository directory: %w", err)
		}
	}
	store, err := s.cfg.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	opts.Password, opts.KeyCache = s.cfg.Password, s.cfg.KeyCache
	r, err := repo.Init(ctx, store, opts)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	s.mu.Lock()
	if s.primary == nil {
		s.primary = r
	} else {
		defer store.Close()
	}
	s.mu.Unlock()
	return &InitResult{ID: r.ID(), Location: store.Location(), Encrypted: r.Encrypted(), Lock: r.Lock()}, nil
}

// EnsureRepository creates the repository when the primary location holds
// none (the server's embedded default); created says whether it did.
func (s *Service) EnsureRepository(ctx context.Context) (created *InitResult, err error) {
	url, _, err := s.PrimaryURL()
	if err != nil {
		return nil, err
	}
	store, err := s.cfg.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	_, ok, err := repo.ReadConfig(ctx, store)
	_ = store.Close()
	if err != nil || ok {
		return nil, err
	}
	res, err := s.Init(ctx, InitOptions{})
	if errors.Is(err, repo.ErrAlreadyExists) {
		return nil, nil // another process won
	}
	return res, err
}

// localDir is the directory of a file:// URL or bare path, "" for other
// schemes.
func localDir(u string) string {
	if strings.HasPrefix(u, "/") {
		return u
	}
	if rest, ok := strings.CutPrefix(u, "file://"); ok {
		path, _, _ := strings.Cut(rest, "?")
		return path
	}
	return ""
}

// CheckStorage writes, reads back and deletes a probe object at the
// primary location (no repository needed).
func (s *Service) CheckStorage(ctx context.Context) (location string, err error) {
	url, _, err := s.PrimaryURL()
	if err != nil {
		return "", err
	}
	store, err := s.cfg.Open(ctx, url)
	if err != nil {
		return "", err
	}
	defer store.Close()
	key := fmt.Sprintf("%s%d", repo.CheckPrefix, time.Now().UnixNano())
	payload := []byte("graphkeep storage check")
	if err := blob.PutBytes(ctx, store, key, payload, nil); err != nil {
		return "", fmt.Errorf("write a probe object: %w", err)
	}
	got, err := blob.ReadAll(ctx, store, key)
	if err != nil {
		return "", fmt.Errorf("read the probe object back: %w", err)
	}
	if string(got) != string(payload) {
		return "", problem.Errorf(problem.Damaged, problem.NoRemedy, key, "the probe object read back differs from what was written")
	}
	if err := store.Delete(ctx, key); err != nil {
		return "", fmt.Errorf("delete the probe object: %w", err)
	}
	return store.Location(), nil
}

// Ready says whether the primary's config object answers.
func (s *Service) Ready(ctx context.Context) error {
	r, err := s.Primary(ctx)
	if err != nil {
		return err
	}
	_, err = r.Store().Stat(ctx, repo.ConfigKey)
	return err
}
