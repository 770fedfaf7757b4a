package repo

import (
	"time"
)

// Manifest describes one snapshot: every entry of the graph's directory and
// the chunks that hold each file's content.
type Manifest struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Graph   string    `json:"graph"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host,omitempty"`
	// Source is the directory the snapshot was taken from, and RootMode its
	// permission bits.
	Source   string `json:"source,omitempty"`
	RootMode uint32 `json:"root_mode,omitempty"`
	// Parent is the snapshot whose unchanged entries were reused.
	Parent string      `json:"parent,omitempty"`
	Files  []FileEntry `json:"files"`
	Totals Totals      `json:"totals"`
	// LightRAG is what validation found; nil when the directory holds no
	// LightRAG files.
	LightRAG *GraphCounts `json:"lightrag,omitempty"`
	// Consistency is how the cut was taken and whether LightRAG's stores
	// agreed in it.
	Consistency *Consistency `json:"consistency,omitempty"`
	// Postgres is the database and workspace the snapshot's tables were
	// read from, with their definitions; nil for a graph of files only.
	Postgres *PostgresSource `json:"postgres,omitempty"`
	// Stores says, for each kind of LightRAG store, whether the snapshot
	// holds it and from where, or that the workspace keeps it elsewhere;
	// empty for snapshots of a directory taken before graphkeep recorded it.
	Stores []Store `json:"stores,omitempty"`
	// UndoOf is set on the snapshot a restore took of the state it was
	// about to replace: the snapshot restored. "latest" passes over such
	// an undo copy (restore it by its id).
	UndoOf string `json:"undo_of,omitempty"`
}

// Summary is a snapshot as lists show it (CLI snapshots --json, the API).
type Summary struct {
	Graph     string    `json:"graph"`
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	SizeBytes int64     `json:"size_bytes"`
	Files     int       `json:"files"`
	// Tables counts a PostgreSQL graph's tables.
	Tables  int    `json:"tables,omitempty"`
	Parent  string `json:"parent,omitempty"`
	Flagged bool   `json:"flagged"`
	// MidIngestion: cut while LightRAG's stores disagreed.
	MidIngestion bool `json:"mid_ingestion"`
	// Resumable: cut in a state LightRAG resumes from (Consistency.Resume
	// names the documents it takes up again).
	Resumable bool `json:"resumable"`
	// State is Manifest.State: consistent, resumable, mid-ingestion,
	// flagged, or ok (cut before graphkeep recorded consistency).
	State string `json:"state"`
	// Good: neither flagged nor mid-ingestion ("latest" picks only these:
	// consistent or resumable ones).
	Good        bool         `json:"good"`
	LightRAG    *GraphCounts `json:"lightrag"`
	Consistency *Consistency `json:"consistency,omitempty"`
	// Source is where the graph was read from: "files", "postgres", or
	// "postgres+files" for a graph split between them.
	Source string `json:"source"`
	// Missing names the LightRAG stores the workspace keeps elsewhere,
	// which the snapshot does not hold.
	Missing []Store `json:"missing,omitempty"`
	// UndoOf: an undo copy, taken before restoring that snapshot.
	UndoOf string `json:"undo_of,omitempty"`
}

// Summary returns the manifest's list entry.
func (m *Manifest) Summary() Summary {
	return Summary{Graph: m.Graph, ID: m.ID, Time: m.Time, SizeBytes: m.Totals.SizeBytes, Files: m.Totals.Files, Tables: m.Totals.Tables,
		Parent: m.Parent, Flagged: m.Flagged(), MidIngestion: m.MidIngestion(), Resumable: m.Resumable(), State: m.State(), Good: m.Good(),
		LightRAG: m.LightRAG, Consistency: m.Consistency, Source: m.SourceKind(), Missing: m.Missing(), UndoOf: m.UndoOf}
}

// Entry types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
	// TypeTable is one PostgreSQL table's rows of the workspace, in
	// primary-key order, as COPY's text format writes them; Path is
	// TablePath(name).
	TypeTable = "table"
)

// FileEntry is one file, directory or symlink.
type FileEntry struct {
	// Path is relative to the graph directory, with "/" separators.
	Path  string    `json:"path"`
	Type  string    `json:"type"`
	Mode  uint32    `json:"mode"` // permission bits
	Size  int64     `json:"size,omitempty"`
	MTime time.Time `json:"mtime"`
	// Inode lets the next backup recognise an unchanged file without
	// reading it (with size and mtime).
	Inode uint64 `json:"inode,omitempty"`
	// SHA256 (formats 1 and 2) or BLAKE3 (format 3) is the hash of the
	// whole content, unkeyed (sha256sum and b3sum print it), that a
	// restore checks the file against: see Repository.FileHash.
	SHA256 string     `json:"sha256,omitempty"`
	BLAKE3 string     `json:"blake3,omitempty"`
	Chunks []ChunkRef `json:"chunks,omitempty"`
	// Target is a symlink's target, stored as is and never followed.
	Target string `json:"target,omitempty"`
	// LightRAG is the file's validation result, reused with the entry.
	LightRAG *FileCounts `json:"lightrag,omitempty"`
}

// Digest is the hash of the file's content the entry records, named:
// "blake3:HEX" or "sha256:HEX" ("" for a symlink or a directory).
func (e *FileEntry) Digest() string {
	switch {
	case e.BLAKE3 != "":
		return "blake3:" + e.BLAKE3
	case e.SHA256 != "":
		return "sha256:" + e.SHA256
	}
	return ""
}

// ChunkRef is one chunk of a file, in order, and where it is stored: in
// a pack (Pack, at Offset, Length stored bytes), or, when Pack is zero, as
// an object of its own (ChunkKey(ID); repositories of format 1).
type ChunkRef struct {
	ID     ChunkID `json:"id"`
	Size   int     `json:"size"`
	Pack   ChunkID `json:"pack,omitzero"`
	Offset int64   `json:"offset,omitempty"`
	Length int     `json:"length,omitempty"`
}

// Object is the object under chunks/ that holds the chunk.
func (c ChunkRef) Object() ChunkID {
	if c.Pack != (ChunkID{}) {
		return c.Pack
	}
	return c.ID
}

// Packed reports whether the chunk is stored in a pack.
func (c ChunkRef) Packed() bool { return c.Pack != (ChunkID{}) }

// Totals summarise a snapshot.
type Totals struct {
	Files int `json:"files"`
	// Tables counts a PostgreSQL graph's tables (their rows are in
	// SizeBytes, as COPY's text format writes them).
	Tables    int   `json:"tables,omitempty"`
	Dirs      int   `json:"dirs"`
	Symlinks  int   `json:"symlinks"`
	SizeBytes int64 `json:"size_bytes"`
	// Chunks counts the distinct chunks the snapshot names.
	Chunks int `json:"chunks"`
	// AddedBytes is the plaintext of chunks this snapshot stored first;
	// StoredBytes what that cost in storage.
	AddedBytes  int64 `json:"added_bytes"`
	StoredBytes int64 `json:"stored_bytes"`
}

// Ref returns the manifest's snapshot reference.
func (m *Manifest) Ref() SnapshotRef {
	return SnapshotRef{Graph: m.Graph, ID: m.ID, Time: m.Time}
}

// Objects returns the distinct objects under chunks/ that hold the
// manifest's chunks (packs, and chunks stored on their own), each with the
// stored bytes of its chunks the manifest names (the plaintext size for a
// chunk on its own).
func (m *Manifest) Objects() map[ChunkID]int64 {
	objects := make(map[ChunkID]int64)
	seen := make(map[ChunkRef]bool)
	for _, f := range m.Files {
		for _, c := range f.Chunks {
			if seen[c] {
				continue
			}
			seen[c] = true
			if c.Packed() {
				objects[c.Pack] += int64(c.Length)
			} else {
				objects[c.ID] = int64(c.Size)
			}
		}
	}
	return objects
}

// ChunkIDs returns the distinct chunks the manifest names.
func (m *Manifest) ChunkIDs() map[ChunkID]int {
	ids := make(map[ChunkID]int)
	for _, f := range m.Files {
		for _, c := range f.Chunks {
			ids[c.ID] = c.Size
		}
	}
	return ids
}
