package pgtest

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Writer ingests documents into a workspace as LightRAG 1.5.6 does on
// PostgreSQL: each document is a run of separate autocommit statements
// (the document, status pending, status processing, chunks and their
// vectors, LLM cache, graph nodes and edges, entity and relation chunk
// lists, entity and relation vectors, status processed), so between them
// the tables disagree, exactly as LightRAG's do. Document g (its
// generation) stamps every row it writes with "g<g>", and updates one
// entity of document g-1, so a torn state shows in the stamps too.
type Writer struct {
	URL       string
	Workspace string
	Schema    Schema
	// Pace is the pause after each statement (LightRAG spends about a
	// second on a document).
	Pace time.Duration
	// Chunks and Entities per document (default 2 and 3); ContentBytes
	// pads each chunk's text (default 200).
	Chunks, Entities, ContentBytes int

	conn *pgx.Conn
	// statements counts the statements committed.
	statements atomic.Int64
}

// Statements is how many statements were committed.
func (w *Writer) Statements() int64 { return w.statements.Load() }

// Close closes the writer's connection.
func (w *Writer) Close() {
	if w.conn != nil {
		w.conn.Close(context.Background())
		w.conn = nil
	}
}

// Run writes documents from..to (inclusive); after, when set, is called
// after each.
func (w *Writer) Run(ctx context.Context, from, to int, after func(gen int)) error {
	for g := from; g <= to; g++ {
		if err := w.Document(ctx, g); err != nil {
			return err
		}
		if after != nil {
			after(g)
		}
	}
	return nil
}

// Document ingests document g.
func (w *Writer) Document(ctx context.Context, g int) error {
	chunksN, entitiesN := cmp.Or(w.Chunks, 2), cmp.Or(w.Entities, 3)
	doc := docID(g)
	vdbChunks, vdbEntity, vdbRelation := w.Schema.VectorTables()
	ws := w.Workspace
	steps := []func() error{
		func() error {
			return w.exec(ctx, `INSERT INTO lightrag_doc_full (workspace, id, doc_name, content) VALUES ($1, $2, $3, $4)
				ON CONFLICT (workspace, id) DO UPDATE SET content = EXCLUDED.content, update_time = CURRENT_TIMESTAMP`,
				ws, doc, doc+".txt", stamp(g, "document"))
		},
		func() error {
			return w.exec(ctx, `INSERT INTO lightrag_doc_status (workspace, id, status, content_summary, content_length, file_path)
				VALUES ($1, $2, 'pending', $3, 100, $4)
				ON CONFLICT (workspace, id) DO UPDATE SET status = 'pending', updated_at = CURRENT_TIMESTAMP`,
				ws, doc, stamp(g, "summary"), doc+".txt")
		},
		func() error {
			return w.exec(ctx, `UPDATE lightrag_doc_status SET status = 'processing', updated_at = CURRENT_TIMESTAMP WHERE workspace = $1 AND id = $2`, ws, doc)
		},
	}
	var chunkIDs []string
	for c := range chunksN {
		id := fmt.Sprintf("chunk-%s-%d", hash(doc), c)
		chunkIDs = append(chunkIDs, id)
		content := w.content(g, id)
		steps = append(steps,
			func() error {
				return w.exec(ctx, `INSERT INTO lightrag_doc_chunks (workspace, id, full_doc_id, chunk_order_index, tokens, content, file_path)
					VALUES ($1, $2, $3, $4, 100, $5, $6) ON CONFLICT (workspace, id) DO UPDATE SET content = EXCLUDED.content`,
					ws, id, doc, c, content, doc+".txt")
			},
			func() error {
				return w.exec(ctx, `INSERT INTO `+vdbChunks+` (workspace, id, full_doc_id, chunk_order_index, tokens, content, content_vector, file_path)
					VALUES ($1, $2, $3, $4, 100, $5, $6::`+w.Schema.Vector+`, $7)
					ON CONFLICT (workspace, id) DO UPDATE SET content = EXCLUDED.content, content_vector = EXCLUDED.content_vector`,
					ws, id, doc, c, content, w.vector(g, id), doc+".txt")
			},
			func() error {
				return w.exec(ctx, `INSERT INTO lightrag_llm_cache (workspace, id, original_prompt, return_value, chunk_id, cache_type)
					VALUES ($1, $2, $3, $4, $5, 'extract') ON CONFLICT (workspace, id) DO UPDATE SET return_value = EXCLUDED.return_value`,
					ws, "cache-"+id, stamp(g, "prompt"), stamp(g, "answer"), id)
			})
	}
	steps = append(steps, func() error {
		return w.exec(ctx, `UPDATE lightrag_doc_status SET chunks_count = $3, chunks_list = $4::jsonb, updated_at = CURRENT_TIMESTAMP WHERE workspace = $1 AND id = $2`,
			ws, doc, len(chunkIDs), jsonList(chunkIDs))
	})
	// Entities: new ones, and one of the previous document's, updated.
	var entities []string
	for e := range entitiesN {
		entities = append(entities, fmt.Sprintf("Entity %d.%d", g, e))
	}
	if g > 1 {
		entities = append(entities, fmt.Sprintf("Entity %d.%d", g-1, 0))
	}
	var relations [][2]string
	for i := 0; i+1 < len(entities); i++ {
		a, b := entities[i], entities[i+1]
		if a > b {
			a, b = b, a
		}
		relations = append(relations, [2]string{a, b})
	}
	for _, e := range entities {
		steps = append(steps, func() error {
			return w.exec(ctx, `INSERT INTO lightrag_graph_nodes (workspace, id, properties) VALUES ($1, $2, $3::jsonb)
				ON CONFLICT (workspace, namespace, id) DO UPDATE SET properties = lightrag_graph_nodes.properties || EXCLUDED.properties, updated_at = now()`,
				ws, e, fmt.Sprintf(`{"entity_id": %q, "description": %q}`, e, stamp(g, "entity")))
		})
	}
	for _, r := range relations {
		steps = append(steps, func() error {
			return w.exec(ctx, `INSERT INTO lightrag_graph_edges (workspace, src_id, tgt_id, properties) VALUES ($1, $2, $3, $4::jsonb)
				ON CONFLICT (workspace, namespace, src_id, tgt_id) DO UPDATE SET properties = EXCLUDED.properties, updated_at = now()`,
				ws, r[0], r[1], fmt.Sprintf(`{"description": %q}`, stamp(g, "relation")))
		})
	}
	for _, e := range entities {
		steps = append(steps, func() error {
			return w.exec(ctx, `INSERT INTO lightrag_entity_chunks (workspace, id, chunk_ids, count) VALUES ($1, $2, $3::jsonb, $4)
				ON CONFLICT (workspace, id) DO UPDATE SET chunk_ids = EXCLUDED.chunk_ids, count = EXCLUDED.count, update_time = CURRENT_TIMESTAMP`,
				ws, e, jsonList(chunkIDs), len(chunkIDs))
		})
	}
	for _, r := range relations {
		steps = append(steps, func() error {
			return w.exec(ctx, `INSERT INTO lightrag_relation_chunks (workspace, id, chunk_ids, count) VALUES ($1, $2, $3::jsonb, $4)
				ON CONFLICT (workspace, id) DO UPDATE SET chunk_ids = EXCLUDED.chunk_ids, count = EXCLUDED.count, update_time = CURRENT_TIMESTAMP`,
				ws, r[0]+"<SEP>"+r[1], jsonList(chunkIDs), len(chunkIDs))
		})
	}
	for _, e := range entities {
		steps = append(steps, func() error {
			return w.exec(ctx, `INSERT INTO `+vdbEntity+` (workspace, id, entity_name, content, content_vector, chunk_ids, file_path)
				VALUES ($1, $2, $3, $4, $5::`+w.Schema.Vector+`, $6, $7)
				ON CONFLICT (workspace, id) DO UPDATE SET content = EXCLUDED.content, content_vector = EXCLUDED.content_vector, update_time = CURRENT_TIMESTAMP`,
				ws, "ent-"+hash(e), e, stamp(g, e), w.vector(g, e), chunkIDs, doc+".txt")
		})
	}
	for _, r := range relations {
		steps = append(steps, func() error {
			return w.exec(ctx, `INSERT INTO `+vdbRelation+` (workspace, id, source_id, target_id, content, content_vector, chunk_ids, file_path)
				VALUES ($1, $2, $3, $4, $5, $6::`+w.Schema.Vector+`, $7, $8)
				ON CONFLICT (workspace, id) DO UPDATE SET content = EXCLUDED.content, content_vector = EXCLUDED.content_vector, update_time = CURRENT_TIMESTAMP`,
				ws, "rel-"+hash(r[0]+r[1]), r[0], r[1], stamp(g, r[0]+" "+r[1]), w.vector(g, r[0]+r[1]), chunkIDs, doc+".txt")
		})
	}
	steps = append(steps,
		func() error {
			return w.exec(ctx, `INSERT INTO lightrag_full_entities (workspace, id, entity_names, count) VALUES ($1, $2, $3::jsonb, $4)
				ON CONFLICT (workspace, id) DO UPDATE SET entity_names = EXCLUDED.entity_names`, ws, doc, jsonList(entities), len(entities))
		},
		func() error {
			pairs := make([]string, len(relations))
			for i, r := range relations {
				pairs[i] = r[0] + "<SEP>" + r[1]
			}
			return w.exec(ctx, `INSERT INTO lightrag_full_relations (workspace, id, relation_pairs, count) VALUES ($1, $2, $3::jsonb, $4)
				ON CONFLICT (workspace, id) DO UPDATE SET relation_pairs = EXCLUDED.relation_pairs`, ws, doc, jsonList(pairs), len(pairs))
		},
		func() error {
			return w.exec(ctx, `UPDATE lightrag_doc_status SET status = 'processed', updated_at = CURRENT_TIMESTAMP WHERE workspace = $1 AND id = $2`, ws, doc)
		})
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("document %d: %w", g, err)
		}
		if w.Pace > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(w.Pace): // the writer's pace, not a test's wait
			}
		}
	}
	return nil
}

func (w *Writer) exec(ctx context.Context, sql string, args ...any) error {
	if w.conn == nil {
		conn, err := pgx.Connect(ctx, w.URL)
		if err != nil {
			return err
		}
		w.conn = conn
	}
	if _, err := w.conn.Exec(ctx, sql, args...); err != nil {
		return err
	}
	w.statements.Add(1)
	return nil
}

func (w *Writer) content(g int, id string) string {
	s := stamp(g, id)
	n := cmp.Or(w.ContentBytes, 200)
	if len(s) >= n {
		return s
	}
	var b strings.Builder
	b.WriteString(s)
	for i := 0; b.Len() < n; i++ {
		b.WriteString(" lorem ipsum ")
		b.WriteString(strconv.Itoa((g*7919 + i*104729) % 100000))
	}
	return b.String()
}

// vector is a deterministic embedding in the column's text form.
func (w *Writer) vector(g int, id string) string {
	dim := w.Schema.Dim
	if dim == 0 {
		dim = 8
	}
	seed := md5.Sum([]byte(fmt.Sprint(g, id)))
	parts := make([]string, dim)
	for i := range parts {
		x := float64(seed[i%16])/255 - 0.5 + float64(i)*1e-4
		parts[i] = strconv.FormatFloat(math.Round(x*1e6)/1e6, 'f', -1, 32)
	}
	if strings.HasPrefix(w.Schema.Vector, "vector") {
		return "[" + strings.Join(parts, ",") + "]"
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// stamp is the text document g writes into a row: its generation first.
func stamp(g int, what string) string { return fmt.Sprintf("g%d %s", g, what) }

func docID(g int) string { return "doc-" + hash(strconv.Itoa(g)) }

func hash(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func jsonList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ",") + "]"
}
