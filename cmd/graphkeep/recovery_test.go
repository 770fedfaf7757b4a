package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/problem"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/repo"
)

// TestHealthSaysWhatToRun: a finding's remedy is printed as the command to
// run, and a checkpoint never validated says so instead of an empty list.
func TestHealthSaysWhatToRun(t *testing.T) {
	t.Parallel()
	h := &recovery.Health{Status: recovery.StateDegraded,
		Findings: []recovery.Finding{
			{State: recovery.StateDegraded, Reason: "the latest checkpoint 20261208T000000Z-abcdef has not been validated", Remedy: problem.ValidateCheckpoint, Object: "20261208T000000Z-abcdef"},
			{State: recovery.StateCritical, Reason: "graph alpha has never been backed up", Remedy: problem.BackUp, Object: "alpha"},
		},
		Checkpoint: &recovery.CheckpointHealth{ID: "20261208T000000Z-abcdef", AgeSeconds: 169.4, RestorableAt: []string{}}}
	var out bytes.Buffer
	printHealth(&out, h)
	for _, want := range []string{
		"has not been validated (run 'graphkeep checkpoint validate 20261208T000000Z-abcdef')",
		"never been backed up (back it up: 'graphkeep backup alpha')",
		"latest checkpoint 20261208T000000Z-abcdef, 2m49s old, not validated yet",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("health output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "restorable at: \n") {
		t.Errorf("health prints an empty place list:\n%s", out.String())
	}
	h.Checkpoint.ValidatedAt, h.Checkpoint.RestorableAt = time.Now().Add(-time.Minute), []string{"primary", "eu"}
	out.Reset()
	printHealth(&out, h)
	if !strings.Contains(out.String(), "restorable at primary, eu (validated 1m ago)") {
		t.Errorf("validated checkpoint:\n%s", out.String())
	}
}

// TestConsistencyLineReadsAsPeopleDo: a graph written long ago reads in
// days, and one attempt is one attempt.
func TestConsistencyLineReadsAsPeopleDo(t *testing.T) {
	t.Parallel()
	c := &repo.Consistency{SingleInstant: true, Consistent: true, QuietMS: (8182*time.Hour + 4*time.Minute + 1126*time.Millisecond).Milliseconds(),
		WaitedMS: 3, CutMS: 41, Attempts: 1}
	got := consistencyLine(c)
	for _, want := range []string{"last written 340d22h before the cut", "waited 3ms", "cut in 41ms", "(1 attempt)"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	c.Attempts = 3
	if got := consistencyLine(c); !strings.Contains(got, "(3 attempts)") {
		t.Errorf("%q", got)
	}
}
