package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/graphkeep/graphkeep/api"
	"github.com/graphkeep/graphkeep/core/backup"
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
	graphs  map[string]backup.Progress // the latest of each graph in flight
}

func newProgress(jsonOut bool) *progressBar {
	return &progressBar{enabled: !jsonOut && term.IsTerminal(int(os.Stderr.Fd()))}
}

// update is a backup.Progress callback. Graphs backed up or restored
// together share one line, with their sums.
func (p *progressBar) update(verb string) func(backup.Progress) {
	return func(one backup.Progress) {
		if !p.enabled {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.graphs == nil {
			p.graphs = map[string]backup.Progress{}
		}
		p.graphs[one.Graph] = one
		pr := backup.Progress{Graph: one.Graph}
		if len(p.graphs) > 1 {
			pr.Graph = fmt.Sprintf("%d graphs", len(p.graphs))
		}
		for _, g := range p.graphs {
			pr.Files, pr.TotalFiles = pr.Files+g.Files, pr.TotalFiles+g.TotalFiles
			pr.Bytes, pr.TotalBytes = pr.Bytes+g.Bytes, pr.TotalBytes+g.TotalBytes
		}
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

// done clears the line and forgets the graphs shown.
func (p *progressBar) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.graphs = nil
	if p.drawn {
		fmt.Fprint(os.Stderr, "\r\033[K")
		p.drawn = false
	}
}

// errorCode names the kind of a failure for --json output, with the API's
// codes; a failure of no known kind (a usage mistake, say) is "error".
func errorCode(err error) string {
	if code := api.ErrorCode(err); code != "internal" {
		return code
	}
	return "error"
}

// humanDuration shows whole days as "30d", anything else as Go does.
func humanDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.Round(time.Second).String()
}
