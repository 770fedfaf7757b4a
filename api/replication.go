package api

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/replication"
)

// targetView is a target as the API shows it: its URL never carries secrets
// (credentials come from the environment), status and lag included.
type targetView struct {
	replication.Target
	Status       string    `json:"status"`
	LagSnapshots int       `json:"lag_snapshots"`
	LagBytes     int64     `json:"lag_bytes"`
	RPOSeconds   float64   `json:"rpo_seconds"`
	LastSuccess  time.Time `json:"last_success"`
	LastError    string    `json:"last_error,omitempty"`
}

func (s *Server) targetView(ctx context.Context, t replication.Target, lagToo bool) targetView {
	v := targetView{Target: t, Status: replication.Unknown, LagSnapshots: -1}
	if st, err := replication.LoadStatus(ctx, s.Repo(), t.ID); err == nil {
		v.Status, v.LastSuccess = st.State, st.LastSuccess
		if st.LastErrorTime.After(st.LastSuccess) {
			v.LastError = st.LastError
		}
	}
	if lagToo {
		if h, err := s.view.systemHealth(ctx, false); err == nil && h != nil {
			for _, th := range h.Targets {
				if th.ID == t.ID {
					v.LagSnapshots, v.LagBytes, v.RPOSeconds = th.LagSnapshots, th.LagBytes, th.RPOSeconds
				}
			}
		}
	}
	return v
}

func (s *Server) listTargets(w http.ResponseWriter, r *http.Request) {
	targets, err := replication.ListTargets(r.Context(), s.Repo())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := []targetView{}
	for _, t := range targets {
		out = append(out, s.targetView(r.Context(), t, true))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addTarget(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID            string   `json:"id"`
		URL           string   `json:"url"`
		Graphs        []string `json:"graphs"`
		MirrorDeletes bool     `json:"mirror_deletes"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	if !idPattern.MatchString(body.ID) {
		writeError(w, r, errBadRequest("field \"id\" %q is invalid: use 1 to 64 letters, digits, '_' or '-'", body.ID))
		return
	}
	if body.URL == "" {
		writeError(w, r, errBadRequest("field \"url\" is required"))
		return
	}
	for _, g := range body.Graphs {
		if !idPattern.MatchString(g) {
			writeError(w, r, errBadRequest("field \"graphs\": %q is not a graph id", g))
			return
		}
	}
	t := replication.Target{ID: body.ID, URL: body.URL, Graphs: body.Graphs, MirrorDeletes: body.MirrorDeletes}
	if err := replication.AddTarget(r.Context(), s.Repo(), s.deps.Open, t); err != nil {
		writeError(w, r, err)
		return
	}
	t, _ = replication.GetTarget(r.Context(), s.Repo(), t.ID)
	writeJSON(w, http.StatusCreated, s.targetView(r.Context(), t, false))
}

func (s *Server) targetHealth(w http.ResponseWriter, r *http.Request) {
	t, err := replication.GetTarget(r.Context(), s.Repo(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	latency, perr := time.Duration(0), error(nil)
	dst, perr := s.deps.Open(r.Context(), t.URL)
	if perr == nil {
		latency, perr = replication.Probe(r.Context(), dst, 5*time.Second)
		dst.Close()
	}
	if _, err := replication.Record(r.Context(), s.Repo(), t.ID, perr, latency, replication.Hysteresis{}); err != nil {
		writeError(w, r, err)
		return
	}
	v := s.targetView(r.Context(), t, true)
	writeJSON(w, http.StatusOK, map[string]any{"target": v, "probe_latency_ms": latency.Milliseconds(), "probe_error": errText(perr)})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (s *Server) removeTarget(w http.ResponseWriter, r *http.Request) {
	if err := replication.RemoveTarget(r.Context(), s.Repo(), chi.URLParam(r, "id")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) graphReplication(w http.ResponseWriter, r *http.Request) {
	graph := chi.URLParam(r, "graph_id")
	ctx := r.Context()
	ref, ok, err := s.Repo().Latest(ctx, graph, mustRefs(ctx, s, graph))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if !ok {
		writeError(w, r, errNotFound("graph %q has no snapshots", graph))
		return
	}
	targets, err := replication.ListTargets(ctx, s.Repo())
	if err != nil {
		writeError(w, r, err)
		return
	}
	type onTarget struct {
		Target      string `json:"target"`
		HoldsLatest bool   `json:"holds_latest"`
		Latest      string `json:"latest,omitempty"`
		Error       string `json:"error,omitempty"`
	}
	out := []onTarget{}
	for _, t := range targets {
		if !t.Includes(graph) {
			continue
		}
		one := onTarget{Target: t.ID}
		dst, err := s.deps.Open(ctx, t.URL)
		if err == nil {
			var lag *replication.Lag
			lag, err = replication.ComputeLag(ctx, s.Repo(), t, dst, "")
			dst.Close()
			if lag != nil {
				one.Latest = lag.Latest[graph]
				one.HoldsLatest = one.Latest == ref.ID
			}
		}
		if err != nil {
			one.Error = err.Error()
		}
		out = append(out, one)
	}
	writeJSON(w, http.StatusOK, map[string]any{"graph": graph, "latest": ref.ID, "targets": out})
}

func (s *Server) sync(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Target string `json:"target"`
		Graph  string `json:"graph"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	for field, v := range map[string]string{"target": body.Target, "graph": body.Graph} {
		if v != "" && !idPattern.MatchString(v) {
			writeError(w, r, errBadRequest("field %q: %q is invalid", field, v))
			return
		}
	}
	s.startJob(w, r, "replicate", body.Target, func(ctx context.Context, _ func(backup.Progress)) (any, error) {
		return s.Sync(ctx, body.Target, body.Graph)
	})
}

// Sync replicates to every target (or one); the scheduler uses it too.
func (s *Server) Sync(ctx context.Context, target, graph string) ([]*replication.Result, error) {
	res, err := replication.RunOnce(ctx, s.Repo(), s.deps.Open, replication.WatchOptions{Only: target,
		Replicate: replication.Options{Graph: graph, Lease: s.deps.Lease}})
	if res == nil {
		res = []*replication.Result{}
	}
	return res, err
}
