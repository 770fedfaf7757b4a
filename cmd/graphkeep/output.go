package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/backup"
	"github.com/graphkeep/graphkeep/core/recovery"
	"github.com/graphkeep/graphkeep/core/replication"
	"github.com/graphkeep/graphkeep/core/repo"
	"github.com/graphkeep/graphkeep/core/retention"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable starts a table on stdout with its header row (columns split by
// tabs); Flush prints it aligned.
func newTable(header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// progressBar draws one line on stderr while long work runs, only when
// stderr is a terminal and output is not JSON.
type progressBar struct {
	enabled bool
	mu      sync.Mutex
	last    time.Time
	drawn   bool
}

func newProgress(jsonOut bool) *progressBar {
	return &progressBar{enabled: !jsonOut && term.IsTerminal(int(os.Stderr.Fd()))}
}

// update is a backup.Progress callback.
func (p *progressBar) update(verb string) func(backup.Progress) {
	return func(pr backup.Progress) {
		if !p.enabled {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if time.Since(p.last) < 100*time.Millisecond && pr.Bytes < pr.TotalBytes {
			return
		}
		p.last = time.Now()
		pct := 100.0
		if pr.TotalBytes > 0 {
			pct = 100 * float64(pr.Bytes) / float64(pr.TotalBytes)
		}
		const width = 24
		filled := min(width, int(pct/100*width))
		bar := ""
		for i := 0; i < width; i++ {
			if i < filled {
				bar += "="
			} else {
				bar += " "
			}
		}
		fmt.Fprintf(os.Stderr, "\r%s %s [%s] %5.1f%%  %s / %s  %d/%d files ", verb, pr.Graph, bar, pct,
			humanBytes(pr.Bytes), humanBytes(pr.TotalBytes), pr.Files, pr.TotalFiles)
		p.drawn = true
	}
}

// done clears the line.
func (p *progressBar) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(os.Stderr, "\r\033[K")
		p.drawn = false
	}
}

// errorCode names the kind of a failure for --json output, with the codes
// the API uses.
func errorCode(err error) string {
	switch {
	case errors.Is(err, repo.ErrSnapshotMissing), errors.Is(err, repo.ErrUnknownGraph), errors.Is(err, recovery.ErrNoCheckpoint),
		errors.Is(err, replication.ErrUnknownTarget), errors.Is(err, repo.ErrNotARepository):
		return "not_found"
	case errors.Is(err, repo.ErrNotGood):
		return "not_good"
	case errors.Is(err, repo.ErrConfigLost):
		return "config_lost"
	case errors.Is(err, repo.ErrAlreadyExists), errors.Is(err, repo.ErrLeaseBusy), errors.Is(err, retention.ErrPinned),
		errors.Is(err, replication.ErrTargetExists), errors.Is(err, recovery.ErrBlocked):
		return "conflict"
	case errors.Is(err, backup.ErrUnstable), errors.Is(err, backup.ErrUnsafePath), errors.Is(err, backup.ErrNotAGraph),
		errors.Is(err, retention.ErrEmptyPolicy), errors.Is(err, replication.ErrForeignTarget):
		return "unprocessable"
	case errors.Is(err, repo.ErrPasswordNeeded), errors.Is(err, repo.ErrWrongPassword):
		return "password"
	case errors.Is(err, blob.ErrUnavailable):
		return "storage_unavailable"
	case errors.Is(err, blob.ErrPermission):
		return "storage_permission"
	case errors.Is(err, repo.ErrCorrupt):
		return "corrupt"
	}
	return "error"
}
