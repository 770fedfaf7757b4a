package postgres

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"strings"

	"github.com/graphkeep/graphkeep/core/repo"
)

// A restore in place usually undoes a small change (an ingestion gone
// wrong): rewriting every row of a large workspace would cost as much as
// loading it into an empty database. A Sync compares one table's rows of
// the workspace with a snapshot's by primary key (hashes of every row
// there now, then of every row the snapshot holds) and writes only the
// difference, in the load's transaction: rows gone or changed are deleted,
// rows new or changed are loaded. The snapshot is streamed twice: to
// compare, then to load the rows that differ.
type Sync struct {
	l       *Load
	t       repo.TableDef
	seed    maphash.Seed
	keys    []int // key columns other than the workspace, by position
	ws      int   // the workspace column
	current map[uint64]uint64
	load    map[uint64]bool // keys of the snapshot's rows to load
	deletes strings.Builder // COPY text of the keys to delete
	Diff    Diff
}

// MaxSyncRows bounds the rows a Sync compares (its hashes take about 50
// bytes a row): a larger table is replaced whole.
const MaxSyncRows = 2_000_000

// BeginSync reads the hashes of t's rows of the workspace as the load
// sees them. It returns nil (and no error) when the table holds more than
// MaxSyncRows rows of it: compare is then no cheaper than replacing.
func (l *Load) BeginSync(ctx context.Context, t repo.TableDef) (*Sync, error) {
	if t.Rows > MaxSyncRows {
		return nil, nil
	}
	s := &Sync{l: l, t: t, seed: maphash.MakeSeed(), current: map[uint64]uint64{}, load: map[uint64]bool{}, Diff: Diff{Table: t.Name}}
	s.keys, s.ws = keyColumns(t)
	tooMany := false
	err := l.copyOut(ctx, copyOutSQL(t, l.workspace), func(fields [][]byte) {
		if len(s.current) >= MaxSyncRows {
			tooMany = true
			return
		}
		s.current[s.keyHash(fields)] = rowHash(s.seed, fields, nil, s.ws)
	})
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", t.Name, err)
	}
	if tooMany {
		return nil, nil
	}
	return s, nil
}

// Empty reports whether the workspace has no rows in the table: loading
// them all needs no comparison.
func (s *Sync) Empty() bool { return len(s.current) == 0 }

// Compare reads the snapshot's rows (COPY text) and works out the
// difference.
func (s *Sync) Compare(r io.Reader) error {
	seen := make(map[uint64]bool, len(s.current))
	err := eachRow(r, func(fields [][]byte) {
		k := s.keyHash(fields)
		seen[k] = true
		v, ok := s.current[k]
		switch {
		case !ok:
			s.Diff.Added++
			s.load[k] = true
		case v == rowHash(s.seed, fields, nil, s.ws):
			s.Diff.Same++
		default:
			s.Diff.Changed++
			s.load[k] = true
			s.deleteKey(fields)
		}
	})
	if err != nil {
		return err
	}
	for k := range s.current {
		if !seen[k] {
			s.Diff.Removed++
		} else {
			delete(s.current, k)
		}
	}
	// current now holds the rows the snapshot lacks.
	return nil
}

// Worth reports whether writing the difference beats rewriting the table:
// it changes at most half the rows.
func (s *Sync) Worth() bool {
	total := s.Diff.Same + s.Diff.Changed + s.Diff.Added + s.Diff.Removed
	return 2*(s.Diff.Changed+s.Diff.Added+s.Diff.Removed) <= total
}

// Apply deletes the rows gone or changed, then loads from r (the
// snapshot's rows again) those new or changed; it returns how many it
// loaded.
func (s *Sync) Apply(ctx context.Context, r io.Reader, rewriteTo string) (int64, error) {
	if len(s.current) > 0 {
		// The keys of the rows the snapshot lacks.
		err := s.l.copyOut(ctx, fmt.Sprintf("COPY (SELECT %s FROM %s WHERE workspace = %s) TO STDOUT",
			identList(s.keyNames()), quoteIdent(s.t.Name), quoteLiteral(s.l.workspace)), func(fields [][]byte) {
			if _, gone := s.current[hashFields(s.seed, fields)]; gone {
				s.deletes.Write(joinFields(fields))
			}
		})
		if err != nil {
			return 0, fmt.Errorf("read the keys of table %s: %w", s.t.Name, err)
		}
	}
	if s.deletes.Len() > 0 {
		if err := s.l.deleteKeys(ctx, s.t, s.keyNames(), strings.NewReader(s.deletes.String())); err != nil {
			return 0, err
		}
	}
	if len(s.load) == 0 {
		return 0, nil
	}
	pr, pw := io.Pipe()
	go func() {
		err := eachRow(r, func(fields [][]byte) {
			if s.load[s.keyHash(fields)] {
				_, _ = pw.Write(joinFields(fields))
			}
		})
		pw.CloseWithError(err)
	}()
	var rows io.Reader = pr
	if rewriteTo != "" {
		var err error
		if rows, err = RewriteWorkspace(pr, s.t, rewriteTo); err != nil {
			pr.CloseWithError(err)
			return 0, err
		}
	}
	n, err := s.l.Copy(ctx, s.t, rows)
	pr.CloseWithError(io.ErrClosedPipe)
	return n, err
}

func (s *Sync) keyHash(fields [][]byte) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	for _, i := range s.keys {
		if i < len(fields) {
			h.Write(fields[i])
		}
		h.WriteByte(0)
	}
	return h.Sum64()
}

// hashFields hashes a row of key columns only, as keyHash hashes them.
func hashFields(seed maphash.Seed, fields [][]byte) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	for _, f := range fields {
		h.Write(f)
		h.WriteByte(0)
	}
	return h.Sum64()
}

func (s *Sync) keyNames() []string {
	names := make([]string, len(s.keys))
	for i, k := range s.keys {
		names[i] = s.t.Columns[k].Name
	}
	return names
}

func (s *Sync) deleteKey(fields [][]byte) {
	key := make([][]byte, len(s.keys))
	for i, k := range s.keys {
		key[i] = fields[k]
	}
	s.deletes.Write(joinFields(key))
}

// joinFields writes fields back as a COPY text line.
func joinFields(fields [][]byte) []byte {
	n := len(fields)
	for _, f := range fields {
		n += len(f)
	}
	out := make([]byte, 0, n)
	for i, f := range fields {
		if i > 0 {
			out = append(out, '\t')
		}
		out = append(out, f...)
	}
	return append(out, '\n')
}
