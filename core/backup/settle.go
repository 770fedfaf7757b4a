package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"
)

// How a backup waits before it cuts (Options.Quiet):
//   - by default, until no flush is in progress: no temporary file of
//     LightRAG's (name.tmp.*, what 1.5 writes and renames over a store) and
//     nothing written for FlushSettle (an in-place rewrite of < 1.5 has a
//     recent mtime). LightRAG ingesting without pause is never silent for
//     seconds, but it is between two flushes many times a second;
//   - with a quiet window, until nothing was written for that long and the
//     pipeline, when configured, is not busy (the behaviour of earlier
//     releases, for users who want a snapshot only of a resting graph);
//   - with a negative Quiet, not at all.

// FlushSettle is how long nothing may have been written for a flush to
// count as over. A flush replaces files milliseconds apart.
const FlushSettle = 100 * time.Millisecond

// staleTemp: a temporary file not written for this long is no flush in
// progress but one a crash left behind (LightRAG writes a temporary file
// from start to rename without pause).
const staleTemp = 10 * time.Second

// flushWait bounds the wait for a moment between flushes; after it the
// graph is cut anyway (the cut itself checks that it is one instant, and
// the invariants whether that instant is usable).
const flushWait = 3 * time.Second

// silence reports whether the backup waits for a quiet window rather than
// the end of a flush.
func (b *builder) silence() bool { return b.opts.Quiet > 0 }

// settle waits, as Options.Quiet says, or until the deadline passes. It
// returns how long the graph had been unwritten, its newest write, and what
// the pipeline said.
func (b *builder) settle(deadline time.Time) (quiet time.Duration, lastWrite time.Time, pipeline string, err error) {
	if !b.silence() {
		if flushDeadline := time.Now().Add(flushWait); flushDeadline.Before(deadline) {
			deadline = flushDeadline
		}
	}
	for {
		var flushing bool
		if lastWrite, flushing, err = b.activity(); err != nil {
			return 0, time.Time{}, "", err
		}
		now := time.Now()
		quiet = max(0, now.Sub(lastWrite))
		var ready bool
		var pause time.Duration
		switch {
		case b.opts.Quiet < 0:
			ready = true
		case !b.silence():
			ready = !flushing && quiet >= FlushSettle
			pause = max(10*time.Millisecond, FlushSettle-quiet)
		default:
			busy := false
			if pipeline, busy = b.pipelineState(); busy {
				pause = 500 * time.Millisecond
			} else {
				pause = max(100*time.Millisecond, min(b.opts.Quiet-quiet, 500*time.Millisecond))
			}
			ready = quiet >= b.opts.Quiet && !busy
		}
		if ready || !now.Before(deadline) {
			if !b.silence() {
				pipeline, _ = b.pipelineState() // recorded, not waited for
			}
			return quiet, lastWrite, pipeline, nil
		}
		if err := b.sleep(min(pause, time.Until(deadline)+time.Millisecond)); err != nil {
			return 0, time.Time{}, "", err
		}
	}
}

// pipelineState asks LightRAG's pipeline_status, when a server is
// configured: "idle", "busy" or "unreachable: ..." ("" when none is).
func (b *builder) pipelineState() (state string, busy bool) {
	if b.pipeline == nil || b.pipeline.URL == "" {
		return "", false
	}
	st, err := b.pipeline.Status(b.ctx)
	switch {
	case err != nil:
		return "unreachable: " + err.Error(), false
	case st.Busy:
		return "busy", true
	}
	return "idle", false
}

// waitForChange waits until something in the graph is newer than since,
// or the deadline passes.
func (b *builder) waitForChange(since, deadline time.Time) error {
	pause := 250 * time.Millisecond
	if !b.silence() {
		pause = 20 * time.Millisecond
		if b.changes != nil {
			pause = FlushSettle // a query, not a stat
		}
	}
	for time.Now().Before(deadline) {
		last, _, err := b.activity()
		if err != nil {
			return err
		}
		if last.After(since) {
			return nil
		}
		if err := b.sleep(min(pause, time.Until(deadline)+time.Millisecond)); err != nil {
			return err
		}
	}
	return nil
}

// activity is the graph's newest write and whether a flush is writing a
// temporary file: of its directory, its workspace in PostgreSQL, or both.
func (b *builder) activity() (last time.Time, flushing bool, err error) {
	if b.dir != "" {
		if last, flushing, err = scanWrites(b.dir); err != nil {
			return last, flushing, err
		}
	}
	if b.changes != nil {
		t, err := b.changes.lastChange(b.ctx)
		if err != nil {
			return last, flushing, err
		}
		last = maxTime(last, t)
	}
	return last, flushing, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (b *builder) sleep(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return b.ctx.Err()
	case <-t.C:
		return nil
	}
}

// LastWrite returns the newest modification time in dir: every entry,
// LightRAG's temporary files included (one being written is activity), and
// the directories themselves (a rename or delete moves theirs).
func LastWrite(dir string) (time.Time, error) {
	last, _, err := scanWrites(dir)
	return last, err
}

// scanWrites returns the newest modification time in dir (as LastWrite)
// and whether a flush is writing a temporary file there (one written in
// the last staleTemp).
func scanWrites(dir string) (last time.Time, flushing bool, err error) {
	now := time.Now()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() && isFlushTemp(d.Name()) && now.Sub(info.ModTime()) < staleTemp {
			flushing = true
		}
		if t := info.ModTime(); t.After(last) {
			last = t
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("watch %s: %w", dir, err)
	}
	return last, flushing, nil
}

// isFlushTemp: a file LightRAG writes and renames over a store (lock files,
// which may stay, do not count).
func isFlushTemp(name string) bool {
	return strings.Contains(name, ".tmp.") || strings.HasSuffix(name, ".tmp")
}
