package pgtest

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Schema is LightRAG 1.5.6's PostgreSQL tables (postgres_impl.py TABLES,
// pgtable_impl.py _DDL) for one embedding model.
type Schema struct {
	// Model and Dim name the vector tables as LightRAG does with an
	// embedding model: lightrag_vdb_chunks_<model>_<dim>d. An empty Model
	// gives the legacy unsuffixed names.
	Model string
	Dim   int
	// Vector is the column type of embeddings: "vector(N)" with pgvector,
	// else "real[]" (pgvector is not packaged for Debian 12).
	Vector string
}

// VectorTables are the names of the chunk, entity and relation vector
// tables.
func (s Schema) VectorTables() (chunks, entities, relations string) {
	suffix := ""
	if s.Model != "" {
		suffix = fmt.Sprintf("_%s_%dd", s.Model, s.Dim)
	}
	return "lightrag_vdb_chunks" + suffix, "lightrag_vdb_entity" + suffix, "lightrag_vdb_relation" + suffix
}

// Create makes the tables in the database at url. It uses pgvector when
// CREATE EXTENSION vector works and real[] otherwise, and says which in
// the returned note.
func Create(ctx context.Context, url string, s Schema) (Schema, string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return s, "", err
	}
	defer conn.Close(ctx)
	note := "pgvector present: LightRAG's exact DDL"
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS vector"); err != nil {
		s.Vector = "real[]"
		note = fmt.Sprintf("pgvector is not installed (%v): vector columns are real[]", firstLine(err.Error()))
	} else {
		s.Vector = fmt.Sprintf("vector(%d)", s.Dim)
	}
	chunks, entities, relations := s.VectorTables()
	ddl := strings.NewReplacer("VECTOR_TYPE", s.Vector, "VDB_CHUNKS", chunks, "VDB_ENTITY", entities, "VDB_RELATION", relations).Replace(lightragDDL)
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return s, note, fmt.Errorf("create LightRAG's tables: %w", err)
	}
	return s, note, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

const lightragDDL = `
CREATE TABLE IF NOT EXISTS LIGHTRAG_DOC_FULL (
    id VARCHAR(255),
    workspace VARCHAR(255),
    doc_name VARCHAR(1024),
    content TEXT,
    meta JSONB,
    sidecar_location TEXT NULL,
    parse_format VARCHAR(32) NULL DEFAULT 'raw',
    content_hash TEXT NULL,
    process_options TEXT NULL,
    chunk_options JSONB NULL DEFAULT '{}'::jsonb,
    parse_engine VARCHAR(32) NULL,
    create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT LIGHTRAG_DOC_FULL_PK PRIMARY KEY (workspace, id)
);
CREATE TABLE IF NOT EXISTS LIGHTRAG_DOC_CHUNKS (
    id VARCHAR(255),
    workspace VARCHAR(255),
    full_doc_id VARCHAR(256),
    chunk_order_index INTEGER,
    tokens INTEGER,
    content TEXT,
    file_path TEXT NULL,
    llm_cache_list JSONB NULL DEFAULT '[]'::jsonb,
    heading JSONB NULL DEFAULT '{}'::jsonb,
    sidecar JSONB NULL DEFAULT '{}'::jsonb,
    create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT LIGHTRAG_DOC_CHUNKS_PK PRIMARY KEY (workspace, id)
);
CREATE TABLE IF NOT EXISTS VDB_CHUNKS (
    id VARCHAR(255),
    workspace VARCHAR(255),
    full_doc_id VARCHAR(256),
    chunk_order_index INTEGER,
    tokens INTEGER,
    content TEXT,
    content_vector VECTOR_TYPE,
    file_path TEXT NULL,
    create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT VDB_CHUNKS_PK PRIMARY KEY (workspace, id)
);
CREATE TABLE IF NOT EXISTS VDB_ENTITY (
    id VARCHAR(255),
    workspace VARCHAR(255),
    entity_name VARCHAR(512),
    content TEXT,
    content_vector VECTOR_TYPE,
    create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    chunk_ids VARCHAR(255)[] NULL,
    file_path TEXT NULL,
    CONSTRAINT VDB_ENTITY_PK PRIMARY KEY (workspace, id)
);
CREATE TABLE IF NOT EXISTS VDB_RELATION (
    id VARCHAR(255),
    workspace VARCHAR(255),
    source_id VARCHAR(512),
    target_id VARCHAR(512),
    content TEXT,
    content_vector VECTOR_TYPE,
    create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    chunk_ids VARCHAR(255)[] NULL,
    file_path TEXT NULL,
    CONSTRAINT VDB_RELATION_PK PRIMARY KEY (workspace, id)
);
CREATE TABLE IF NOT EXISTS LIGHTRAG_LLM_CACHE (
    workspace varchar(255) NOT NULL,
    id varchar(255) NOT NULL,
    original_prompt TEXT,
    return_value TEXT,
    chunk_id VARCHAR(255) NULL,
    cache_type VARCHAR(32),
    queryparam JSONB NULL,
    create_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    update_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT LIGHTRAG_LLM_CACHE_PK PRIMARY KEY (workspace, id)
);
CREATE TABLE IF NOT EXISTS LIGHTRAG_DOC_STATUS (
    workspace varchar(255) NOT NULL,
    id varchar(255) NOT NULL,
    content_summary varchar(255) NULL,
    content_length int4 NULL,
    chunks_count int4 NULL,
    status varchar(64) NULL,
    file_path TEXT NULL,
    chunks_list JSONB NULL DEFAULT '[]'::jsonb,
    track_id varchar(255) NULL,
    metadata JSONB NULL DEFAULT '{}'::jsonb,
    error_msg TEXT NULL,
    content_hash TEXT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT LIGHTRAG_DOC_STATUS_PK PRIMARY KEY (workspace, id)
);
CREATE TABLE IF NOT EXISTS LIGHTRAG_FULL_ENTITIES (
    id VARCHAR(255),
    workspace VARCHAR(255),
    entity_names JSONB,
    count INTEGER,
    create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT LIGHTRAG_FULL_ENTITIES_PK PRIMARY KEY (workspace, id)
);
CREATE TABLE IF NOT EXISTS LIGHTRAG_FULL_RELATIONS (
    id VARCHAR(255),
    workspace VARCHAR(255),
    relation_pairs JSONB,
    count INTEGER,
    create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT LIGHTRAG_FULL_RELATIONS_PK PRIMARY KEY (workspace, id)
);
CREATE TABLE IF NOT EXISTS LIGHTRAG_ENTITY_CHUNKS (
    id VARCHAR(512),
    workspace VARCHAR(255),
    chunk_ids JSONB,
    count INTEGER,
    create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT LIGHTRAG_ENTITY_CHUNKS_PK PRIMARY KEY (workspace, id)
);
CREATE TABLE IF NOT EXISTS LIGHTRAG_RELATION_CHUNKS (
    id VARCHAR(512),
    workspace VARCHAR(255),
    chunk_ids JSONB,
    count INTEGER,
    create_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    update_time TIMESTAMP(0) DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT LIGHTRAG_RELATION_CHUNKS_PK PRIMARY KEY (workspace, id)
);
CREATE TABLE IF NOT EXISTS lightrag_graph_nodes (
    workspace   TEXT        NOT NULL,
    namespace   TEXT        NOT NULL DEFAULT 'chunk_entity_relation',
    id          TEXT        NOT NULL,
    properties  JSONB       NOT NULL DEFAULT '{}',
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace, namespace, id)
);
CREATE TABLE IF NOT EXISTS lightrag_graph_edges (
    workspace   TEXT        NOT NULL,
    namespace   TEXT        NOT NULL DEFAULT 'chunk_entity_relation',
    src_id      TEXT        NOT NULL,
    tgt_id      TEXT        NOT NULL,
    properties  JSONB       NOT NULL DEFAULT '{}',
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace, namespace, src_id, tgt_id),
    CONSTRAINT fk_lightrag_graph_edges_src FOREIGN KEY (workspace, namespace, src_id)
        REFERENCES lightrag_graph_nodes (workspace, namespace, id) ON DELETE CASCADE,
    CONSTRAINT fk_lightrag_graph_edges_tgt FOREIGN KEY (workspace, namespace, tgt_id)
        REFERENCES lightrag_graph_nodes (workspace, namespace, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_lightrag_graph_edges_namespace_tgt
    ON lightrag_graph_edges (workspace, namespace, tgt_id);
`
