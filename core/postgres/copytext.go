package postgres

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strings"

	"github.com/graphkeep/graphkeep/core/repo"
)

// COPY's text format: a row a line, columns separated by tabs, \N for
// NULL, and backslash escapes for backslash, tab, newline and carriage
// return inside a value.

// escapeCopy encodes a value for COPY's text format.
func escapeCopy(s string) string {
	if !strings.ContainsAny(s, "\\\t\n\r") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)
	return r.Replace(s)
}

// RewriteWorkspace returns r's rows of table t with the workspace column
// set to workspace: a snapshot's rows loaded into another workspace.
func RewriteWorkspace(r io.Reader, t repo.TableDef, workspace string) (io.Reader, error) {
	col := slices.IndexFunc(t.Columns, func(c repo.ColumnDef) bool { return c.Name == "workspace" })
	if col < 0 {
		return nil, fmt.Errorf("table %s has no workspace column", t.Name)
	}
	return &rewriter{in: bufio.NewReaderSize(r, 64<<10), col: col, value: []byte(escapeCopy(workspace))}, nil
}

type rewriter struct {
	in    *bufio.Reader
	col   int
	value []byte
	out   []byte // the rewritten line not yet read
	err   error
}

func (w *rewriter) Read(p []byte) (int, error) {
	for len(w.out) == 0 {
		if w.err != nil {
			return 0, w.err
		}
		line, err := w.in.ReadBytes('\n')
		if len(line) > 0 {
			w.out = setField(line, w.col, w.value)
		}
		w.err = err
	}
	n := copy(p, w.out)
	w.out = w.out[n:]
	return n, nil
}

// setField replaces the col-th tab-separated field of line.
func setField(line []byte, col int, value []byte) []byte {
	start := 0
	for range col {
		i := bytes.IndexByte(line[start:], '\t')
		if i < 0 {
			return line
		}
		start += i + 1
	}
	end := bytes.IndexAny(line[start:], "\t\n")
	if end < 0 {
		end = len(line) - start
	}
	out := make([]byte, 0, len(line)-end+len(value))
	out = append(out, line[:start]...)
	out = append(out, value...)
	return append(out, line[start+end:]...)
}

// Diff is how a load would change one table of a workspace.
type Diff struct {
	Table   string `json:"table"`
	Added   int64  `json:"added"`
	Removed int64  `json:"removed"`
	Changed int64  `json:"changed"`
	Same    int64  `json:"unchanged"`
}

// DiffTable compares the rows r holds (a snapshot's table t) with the rows
// workspace has in the table of the database read by rd, by primary key:
// rows to add, remove and change. It holds two hashes per snapshot row.
func DiffTable(ctx context.Context, rd *Reader, t repo.TableDef, workspace string, r io.Reader) (Diff, error) {
	d := Diff{Table: t.Name}
	seed := maphash.MakeSeed()
	keyCols, wsCol := keyColumns(t)
	snap := map[uint64]uint64{}
	if err := eachRow(r, func(fields [][]byte) {
		snap[rowHash(seed, fields, keyCols, -1)] = rowHash(seed, fields, nil, wsCol)
	}); err != nil {
		return d, err
	}
	if _, ok := rd.Catalog.Table(t.Name); ok {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			done <- eachRow(pr, func(fields [][]byte) {
				k := rowHash(seed, fields, keyCols, -1)
				v, ok := snap[k]
				switch {
				case !ok:
					d.Removed++
				case v == rowHash(seed, fields, nil, wsCol):
					d.Same++
					delete(snap, k)
				default:
					d.Changed++
					delete(snap, k)
				}
			})
			pr.Close()
		}()
		_, err := rd.Copy(ctx, t, workspace, pw)
		pw.CloseWithError(err)
		if derr := <-done; err == nil {
			err = derr
		}
		if err != nil {
			return d, err
		}
	}
	d.Added = int64(len(snap))
	return d, nil
}

// keyColumns are the positions of t's key columns other than the
// workspace, and of the workspace column.
func keyColumns(t repo.TableDef) (keys []int, ws int) {
	ws = -1
	for i, c := range t.Columns {
		if c.Name == "workspace" {
			ws = i
		} else if slices.Contains(t.Key, c.Name) {
			keys = append(keys, i)
		}
	}
	return keys, ws
}

// rowHash hashes the fields at cols (every field but skip when cols is
// nil).
func rowHash(seed maphash.Seed, fields [][]byte, cols []int, skip int) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	if cols == nil {
		for i, f := range fields {
			if i != skip {
				h.Write(f)
				h.WriteByte(0)
			}
		}
		return h.Sum64()
	}
	for _, i := range cols {
		if i < len(fields) {
			h.Write(fields[i])
		}
		h.WriteByte(0)
	}
	return h.Sum64()
}

// eachRow calls fn with the fields of each row of COPY text.
func eachRow(r io.Reader, fn func([][]byte)) error {
	in := bufio.NewReaderSize(r, 64<<10)
	var fields [][]byte
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte{'\n'})
			fields = fields[:0]
			for f := range bytes.SplitSeq(line, []byte{'\t'}) {
				fields = append(fields, f)
			}
			fn(fields)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// RowKey returns a function that reads a row's primary key (without the
// workspace) from the start of its COPY text line: the row chunker cuts
// by it, so a chunk boundary stays with its row whatever else changes.
func RowKey(t repo.TableDef) func(line []byte) []byte {
	keys, _ := keyColumns(t)
	last := -1
	for _, k := range keys {
		last = max(last, k)
	}
	return func(line []byte) []byte {
		if last < 0 {
			return line
		}
		out := make([]byte, 0, 64)
		col, start := 0, 0
		for i := 0; i <= len(line) && col <= last; i++ {
			if i < len(line) && line[i] != '\t' && line[i] != '\n' {
				continue
			}
			if slices.Contains(keys, col) {
				out = append(append(out, line[start:i]...), 0)
			}
			col, start = col+1, i+1
		}
		return out
	}
}
