package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/graphkeep/graphkeep/blob"
)

// A prune deletes chunks while backups run, without an exclusive lease.
// The danger is a writer (backup, replication) that relies on a chunk the
// prune found unreferenced: one that read the chunk in its index before
// the snapshot naming it was forgotten, or found it already stored when it
// went to upload it. The protocol that rules this out:
//
//  1. The prune publishes the chunks it means to delete (a sweep's chunks
//     record) under SweepPrefix, naming its own lease.
//  2. Then it lists the live shared leases and publishes them (the sweep's
//     waits record), and waits for every one of them to end.
//  3. Then it reads every manifest again and deletes only the chunks still
//     named by none.
//
// A writer takes its shared lease first and reads the sweep records after.
// Either the prune listed the writer's lease (step 2), so the prune waits
// for the writer and sees its manifest in step 3; or it did not, so the
// writer's lease came after the chunks record and the writer sees the
// record: it then treats the chunks named there as absent, waits for the
// sweep to end before storing any of them, and stores it again (Condemned).
// A record whose prune lease is gone belongs to a prune that died; writers
// ignore it and the next prune removes it.
//
// A sweep that has ended (or whose prune died) leaves a record of that, an
// "ended" record, for SweepLogKept. A backup that trusts the index it kept
// from earlier runs, instead of listing every snapshot, reads them (the
// SweepLog) to learn whether chunks may have gone since (Cache.Known).

// SweepPrefix holds the records of prunes deleting chunks (never
// replicated).
const SweepPrefix = "gc/"

const (
	sweepChunks = "/chunks"
	sweepWaits  = "/waits"
	sweepEnded  = "/ended"
	sweepMagic  = "GKGC1\n"
)

// SweepLogKept is how long a prune keeps the ended records of sweeps. A
// kept index is checked against the listing far more often (indexTrusted),
// so no writer misses a sweep that ended after its last check.
const SweepLogKept = 7 * 24 * time.Hour

// Sweep is a prune's published intent to delete chunks.
type Sweep struct {
	ID string
	// Lease is the key of the prune's lease: while it is held, the sweep
	// is running.
	Lease string
	// Chunks are the chunks it may delete, sorted.
	Chunks []ChunkID
}

// PublishSweep writes the record of a sweep by the prune holding lease
// that may delete ids (step 1).
func (r *Repository) PublishSweep(ctx context.Context, lease *Lease, ids []ChunkID) (*Sweep, error) {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, func(a, b ChunkID) int { return bytes.Compare(a[:], b[:]) })
	s := &Sweep{ID: time.Now().UTC().Format("20060102T150405Z") + "-" + randomHex(6), Lease: lease.Key(), Chunks: ids}
	if err := blob.PutBytes(ctx, r.store, SweepPrefix+s.ID+sweepChunks, encodeSweep(s), nil); err != nil {
		return nil, fmt.Errorf("publish the chunks prune will delete: %w", err)
	}
	return s, nil
}

// PublishSweepWaits records the leases the sweep waits for (step 2).
func (r *Repository) PublishSweepWaits(ctx context.Context, s *Sweep, leases []string) error {
	data, _ := json.Marshal(struct {
		Leases []string `json:"leases"`
	}{leases})
	if err := blob.PutBytes(ctx, r.store, SweepPrefix+s.ID+sweepWaits, data, &blob.PutOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("publish the work prune waits for: %w", err)
	}
	return nil
}

// EndSweep records that the sweep deletes nothing more, then removes its
// records: writers waiting for it go on. When the ended record cannot be
// written the records stay, and the sweep counts as one whose prune died.
func (r *Repository) EndSweep(ctx context.Context, s *Sweep) error {
	if err := r.markSweepEnded(ctx, s.ID); err != nil {
		return err
	}
	return r.removeSweep(ctx, s.ID)
}

func (r *Repository) markSweepEnded(ctx context.Context, id string) error {
	stamp := []byte(time.Now().UTC().Format(time.RFC3339) + "\n")
	if err := blob.PutBytes(ctx, r.store, SweepPrefix+id+sweepEnded, stamp, nil); err != nil {
		return fmt.Errorf("record the end of prune's sweep %s: %w", id, err)
	}
	return nil
}

func (r *Repository) removeSweep(ctx context.Context, id string) error {
	for _, suffix := range []string{sweepChunks, sweepWaits} {
		if err := r.store.Delete(ctx, SweepPrefix+id+suffix); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return err
		}
	}
	return nil
}

// RemoveDeadSweeps ends the sweeps whose prune died (an ended record, then
// their records removed) and returns how many; it removes the ended records
// older than SweepLogKept.
func (r *Repository) RemoveDeadSweeps(ctx context.Context, opts LeaseOptions) (int, error) {
	sweeps, err := r.listSweeps(ctx)
	if err != nil {
		return 0, err
	}
	removed := 0
	for id, rec := range sweeps {
		if rec.ended {
			if err := r.removeEnded(ctx, id, rec); err != nil {
				return removed, err
			}
			continue
		}
		if !rec.chunks {
			if err := r.removeSweep(ctx, id); err != nil {
				return removed, err
			}
			continue
		}
		s, err := r.readSweep(ctx, id)
		if errors.Is(err, blob.ErrNotFound) {
			continue
		}
		if err != nil && !errors.Is(err, errSweepDamaged) {
			return removed, err
		}
		alive := false
		if err == nil {
			if alive, err = r.leaseAlive(ctx, s.Lease, opts); err != nil {
				return removed, err
			}
		}
		if !alive {
			if err := r.markSweepEnded(ctx, id); err != nil {
				return removed, err
			}
			if err := r.removeSweep(ctx, id); err != nil {
				return removed, err
			}
			removed++
		}
	}
	return removed, nil
}

// removeEnded removes what a killed EndSweep left of an ended sweep's
// records, and its ended record once older than SweepLogKept (by the time
// in its id; an id without one is kept).
func (r *Repository) removeEnded(ctx context.Context, id string, rec *sweepObjects) error {
	if rec.chunks || rec.waits {
		if err := r.removeSweep(ctx, id); err != nil {
			return err
		}
	}
	began, err := time.Parse("20060102T150405Z", id[:min(len(id), len("20060102T150405Z"))])
	if err != nil || time.Since(began) < SweepLogKept {
		return nil
	}
	if err := r.store.Delete(ctx, SweepPrefix+id+sweepEnded); err != nil && !errors.Is(err, blob.ErrNotFound) {
		return err
	}
	return nil
}

// Condemned is what a writer holding a shared lease must not rely on:
// the chunks of the sweeps that do not wait for it.
type Condemned struct {
	repo   *Repository
	opts   LeaseOptions
	sweeps []*Sweep
	log    SweepLog

	once    sync.Once
	waitErr error
}

// Condemned reads the sweeps running now. Call it after taking mine, the
// writer's shared lease, and before reading the index.
func (r *Repository) Condemned(ctx context.Context, mine *Lease, opts LeaseOptions) (*Condemned, error) {
	opts.applyDefaults()
	c := &Condemned{repo: r, opts: opts, log: SweepLog{Read: time.Now()}}
	sweeps, err := r.listSweeps(ctx)
	if err != nil || len(sweeps) == 0 {
		return c, err
	}
	for id, rec := range sweeps {
		if rec.ended {
			c.log.Ended = append(c.log.Ended, id)
			continue
		}
		// Running, dead, or ending as the listing went: chunks may go
		// without an ended record to say so yet.
		c.log.Open = true
		if !rec.chunks {
			continue
		}
		s, err := r.readSweep(ctx, id)
		if errors.Is(err, blob.ErrNotFound) {
			continue // ended since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("%w (the next prune removes it if its prune has died)", err)
		}
		waitsForMe, running, err := r.sweepWaitsFor(ctx, s, mine.Key(), rec.waits, opts)
		if err != nil {
			return nil, err
		}
		if running && !waitsForMe {
			c.sweeps = append(c.sweeps, s)
		}
	}
	slices.Sort(c.log.Ended)
	return c, nil
}

// SweepLog is what a writer read of the sweeps in SweepPrefix.
type SweepLog struct {
	// Read is when the reading began: every sweep in Ended had deleted
	// all it would by then.
	Read time.Time
	// Ended names the sweeps with an ended record, sorted.
	Ended []string
	// Open reports a sweep without one (running, or its prune died): it
	// may delete, or have deleted, chunks no record says are gone.
	Open bool
}

// Log is what c was read from.
func (c *Condemned) Log() SweepLog { return c.log }

// sweepWaitsFor reports whether sweep s waits for the lease at key, and
// whether it is still running. A sweep between steps 1 and 2 has no waits
// record yet: wait for it (a few milliseconds) or for its prune to die.
func (r *Repository) sweepWaitsFor(ctx context.Context, s *Sweep, key string, haveWaits bool, opts LeaseOptions) (waits, running bool, err error) {
	poll := min(opts.Poll, 100*time.Millisecond)
	for {
		if haveWaits {
			data, err := blob.ReadAll(ctx, r.store, SweepPrefix+s.ID+sweepWaits)
			if err == nil {
				var w struct {
					Leases []string `json:"leases"`
				}
				if err := json.Unmarshal(data, &w); err != nil {
					return false, false, fmt.Errorf("sweep %s: damaged waits record: %v", s.ID, err)
				}
				return slices.Contains(w.Leases, key), true, nil
			}
			if !errors.Is(err, blob.ErrNotFound) {
				return false, false, err
			}
		}
		alive, err := r.leaseAlive(ctx, s.Lease, opts)
		if err != nil || !alive {
			return false, false, err
		}
		if _, err := r.store.Stat(ctx, SweepPrefix+s.ID+sweepChunks); errors.Is(err, blob.ErrNotFound) {
			return false, false, nil // ended
		}
		select {
		case <-ctx.Done():
			return false, false, ctx.Err()
		case <-time.After(poll):
		}
		_, err = r.store.Stat(ctx, SweepPrefix+s.ID+sweepWaits)
		haveWaits = err == nil
	}
}

// Has reports whether a running sweep may delete id.
func (c *Condemned) Has(id ChunkID) bool {
	if c == nil {
		return false
	}
	for _, s := range c.sweeps {
		if _, ok := slices.BinarySearchFunc(s.Chunks, id, func(a, b ChunkID) int { return bytes.Compare(a[:], b[:]) }); ok {
			return true
		}
	}
	return false
}

// Any reports whether any running sweep condemns chunks.
func (c *Condemned) Any() bool { return c != nil && len(c.sweeps) > 0 }

// Wait waits until every sweep c holds has ended (or its prune died).
// After it returns nil, a condemned chunk is gone or will stay: store it
// again (create-if-absent) before naming it.
func (c *Condemned) Wait(ctx context.Context) error {
	if c == nil {
		return nil
	}
	c.once.Do(func() {
		for _, s := range c.sweeps {
			for {
				_, err := c.repo.store.Stat(ctx, SweepPrefix+s.ID+sweepChunks)
				if errors.Is(err, blob.ErrNotFound) {
					break
				}
				if err != nil {
					c.waitErr = err
					return
				}
				alive, err := c.repo.leaseAlive(ctx, s.Lease, c.opts)
				if err != nil {
					c.waitErr = err
					return
				}
				if !alive {
					break
				}
				select {
				case <-ctx.Done():
					c.waitErr = ctx.Err()
					return
				case <-time.After(c.opts.Poll):
				}
			}
		}
	})
	return c.waitErr
}

type sweepObjects struct{ chunks, waits, ended bool }

func (r *Repository) listSweeps(ctx context.Context) (map[string]*sweepObjects, error) {
	out := map[string]*sweepObjects{}
	err := blob.Walk(ctx, r.store, SweepPrefix, func(o blob.Object) error {
		rest := strings.TrimPrefix(o.Key, SweepPrefix)
		i := strings.LastIndexByte(rest, '/')
		if i <= 0 {
			return nil
		}
		id, suffix := rest[:i], rest[i:]
		if suffix != sweepChunks && suffix != sweepWaits && suffix != sweepEnded {
			return nil // not graphkeep's
		}
		rec := out[id]
		if rec == nil {
			rec = &sweepObjects{}
			out[id] = rec
		}
		switch suffix {
		case sweepChunks:
			rec.chunks = true
		case sweepWaits:
			rec.waits = true
		case sweepEnded:
			rec.ended = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list running prunes: %w", err)
	}
	return out, nil
}

var errSweepDamaged = errors.New("damaged sweep record")

func (r *Repository) readSweep(ctx context.Context, id string) (*Sweep, error) {
	data, err := blob.ReadAll(ctx, r.store, SweepPrefix+id+sweepChunks)
	if err != nil {
		return nil, err
	}
	s, err := decodeSweep(data)
	if err != nil {
		return nil, fmt.Errorf("%w %s%s%s: %v", errSweepDamaged, SweepPrefix, id, sweepChunks, err)
	}
	s.ID = id
	return s, nil
}

// encodeSweep: magic | uint16 lease key length | lease key | uint32 count |
// count x 32-byte ids | SHA-256 of everything before it.
func encodeSweep(s *Sweep) []byte {
	buf := make([]byte, 0, len(sweepMagic)+2+len(s.Lease)+4+len(s.Chunks)*len(ChunkID{})+sha256.Size)
	buf = append(buf, sweepMagic...)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(s.Lease)))
	buf = append(buf, s.Lease...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s.Chunks)))
	for _, id := range s.Chunks {
		buf = append(buf, id[:]...)
	}
	sum := sha256.Sum256(buf)
	return append(buf, sum[:]...)
}

func decodeSweep(data []byte) (*Sweep, error) {
	if len(data) < len(sweepMagic)+2+4+sha256.Size || string(data[:len(sweepMagic)]) != sweepMagic {
		return nil, errors.New("not a sweep record")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, errors.New("checksum mismatch")
	}
	rest := body[len(sweepMagic):]
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < n+4 {
		return nil, errors.New("truncated")
	}
	s := &Sweep{Lease: string(rest[:n])}
	rest = rest[n:]
	count := int(binary.BigEndian.Uint32(rest))
	rest = rest[4:]
	if len(rest) != count*len(ChunkID{}) {
		return nil, errors.New("wrong length")
	}
	s.Chunks = make([]ChunkID, count)
	for i := range s.Chunks {
		copy(s.Chunks[i][:], rest[i*len(ChunkID{}):])
	}
	return s, nil
}
