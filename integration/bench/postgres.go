package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/graphkeep/graphkeep/integration/pgtest"
)

var (
	pgOnly = flag.Bool("postgres-only", false, "run only the PostgreSQL bench")
	pgMB   = flag.Int("pg-mb", 1100, "size in MB of the large workspace's rows (1024-dim vectors), beside two of 20 MB")
)

// pgBench: a LightRAG workspace of about -pg-mb MB in PostgreSQL (rows as
// LightRAG's, 1024-dim vectors) beside two small ones. graphkeep's full,
// no-change and +2% backups and its restores (in place, as a clone),
// beside pg_dump -Fc / pg_restore of a database holding only that
// workspace, and restic and kopia backing up a plain dump of it, in the
// same run.
func pgBench(dir string) {
	bin, err := pgtest.Bin()
	if err != nil {
		fmt.Fprintf(os.Stderr, "PostgreSQL bench skipped: %v\n", err)
		return
	}
	work := filepath.Join(dir, "pg-bench")
	must(os.RemoveAll(work))
	must(os.MkdirAll(work, 0o755))
	srv, err := pgtest.Start()
	must(err)
	defer srv.Remove()
	ctx := context.Background()
	admin := srv.URL("postgres")
	sql(ctx, admin, "CREATE DATABASE lightrag")
	url := srv.URL("lightrag")
	schema, note, err := pgtest.Create(ctx, url, pgtest.Schema{Model: "bge_m3", Dim: 1024})
	must(err)
	fmt.Printf("\nPostgreSQL %s (%s)\n", serverVersion(ctx, url), note)
	start := time.Now()
	populate(ctx, url, schema, "big", int64(*pgMB)<<20)
	populate(ctx, url, schema, "small1", 20<<20)
	populate(ctx, url, schema, "small2", 20<<20)
	sql(ctx, url, "VACUUM ANALYZE")
	size := workspaceBytes(ctx, url, schema, "big")
	fmt.Printf("workspace big: %s of rows (pg_column_size), generated in %s; two more of 20 MB beside it\n", mb(size), time.Since(start).Round(time.Second))
	// pg_dump's database holds only that workspace.
	sql(ctx, admin, "CREATE DATABASE onlybig TEMPLATE lightrag")
	only := srv.URL("onlybig")
	for _, t := range tableNames(ctx, only) {
		sql(ctx, only, "DELETE FROM "+pgx.Identifier{t}.Sanitize()+" WHERE workspace <> 'big'")
	}
	sql(ctx, only, "VACUUM FULL")

	env := append(os.Environ(), "GRAPHKEEP_PASSWORD=bench password", "RESTIC_PASSWORD=bench password", "KOPIA_PASSWORD=bench password",
		"PGPASSWORD="+srv.Password, "GRAPHKEEP_CACHE_DIR="+filepath.Join(work, "cache-graphkeep"),
		"RESTIC_CACHE_DIR="+filepath.Join(work, "cache-restic"), "KOPIA_CONFIG_PATH="+filepath.Join(work, "kopia.config"),
		"KOPIA_CACHE_DIRECTORY="+filepath.Join(work, "cache-kopia"), "KOPIA_LOG_DIR="+filepath.Join(work, "kopia-logs"),
		"KOPIA_CHECK_FOR_UPDATES=false")
	gkRepo := filepath.Join(work, "repo-graphkeep")
	gk := func(args ...string) measurement {
		full := append([]string{"--repo", "file://" + gkRepo, "--graph", "big=" + withoutPassword(url) + "&workspace=big"}, args...)
		return runIn(env, *graphkeepBin, full...)
	}
	dumpArgs := func(format, file string) []string {
		return []string{"-h", "127.0.0.1", "-p", fmt.Sprint(srv.Port), "-U", pgtest.User, "-d", "onlybig", "-F", format, "-f", file}
	}
	pgDump, pgRestore := filepath.Join(bin, "pg_dump"), filepath.Join(bin, "pg_restore")

	type row struct{ name, gk, pg, restic, kopia string }
	var rows []row
	gk("init")

	full := stored(gkRepo, func() measurement { return gk("backup", "big", "--json") })
	firstID := jsonIDs(full.output, "id")[0]
	dumpC := filepath.Join(work, "big.dump")
	dump := runIn(env, pgDump, dumpArgs("c", dumpC)...)
	dump.stored = fileSize(dumpC)
	noChange := stored(gkRepo, func() measurement { return gk("backup", "big", "--json") })

	plain := filepath.Join(work, "plain", "big.sql")
	must(os.MkdirAll(filepath.Dir(plain), 0o755))
	plainDump := runIn(env, pgDump, dumpArgs("p", plain)...)
	resticRepo, kopiaRepo := filepath.Join(work, "repo-restic"), filepath.Join(work, "repo-kopia")
	var restic1, restic2, kopia1, kopia2 measurement
	haveRestic, haveKopia := exists(*resticBin), exists(*kopiaBin)
	if haveRestic {
		runIn(env, *resticBin, "-r", resticRepo, "init")
		restic1 = stored(resticRepo, func() measurement {
			return runIn(env, *resticBin, "-r", resticRepo, "backup", "--host", "bench", plain)
		})
	}
	if haveKopia {
		runIn(env, *kopiaBin, "repository", "create", "filesystem", "--path", kopiaRepo)
		kopia1 = stored(kopiaRepo, func() measurement { return runIn(env, *kopiaBin, "snapshot", "create", plain) })
	}

	// +2%: entity and chunk rows updated (new text, new vector), new chunks.
	for _, u := range []string{url, only} {
		grow(ctx, u, schema, "big", 2)
	}
	growth := stored(gkRepo, func() measurement { return gk("backup", "big", "--json") })
	dump2 := runIn(env, pgDump, dumpArgs("c", dumpC+"2")...)
	dump2.stored = fileSize(dumpC + "2")
	runIn(env, pgDump, dumpArgs("p", plain)...)
	if haveRestic {
		restic2 = stored(resticRepo, func() measurement {
			return runIn(env, *resticBin, "-r", resticRepo, "backup", "--host", "bench", plain)
		})
	}
	if haveKopia {
		kopia2 = stored(kopiaRepo, func() measurement { return runIn(env, *kopiaBin, "snapshot", "create", plain) })
	}

	// Restores of the first backup, undoing the +2%: graphkeep in place
	// (after its undo snapshot; writing only the rows that differ) and as
	// a clone into an empty workspace; pg_restore of the first dump into an
	// empty database.
	inPlace := gk("restore", "big", firstID)
	clone := gk("restore", "big", firstID, "--to-workspace", "big_clone")
	sql(ctx, admin, "CREATE DATABASE restored")
	restoreArgs := []string{"-h", "127.0.0.1", "-p", fmt.Sprint(srv.Port), "-U", pgtest.User, "-d", "restored", dumpC}
	pgRest := runIn(env, pgRestore, restoreArgs...)
	for _, ws := range []string{"big", "big_clone"} {
		got, want := workspaceRows(ctx, url, ws), workspaceRows(ctx, srv.URL("restored"), "big")
		if got != want {
			fmt.Fprintf(os.Stderr, "workspace %s holds %d rows after the restore, pg_restore's copy %d\n", ws, got, want)
			os.Exit(1)
		}
	}

	t := func(m measurement) string { return m.wall.Round(10 * time.Millisecond).String() }
	b := func(m measurement) string { return mb(m.stored) }
	na := "–"
	opt := func(ok bool, s string) string {
		if !ok {
			return "not built"
		}
		return s
	}
	rows = append(rows,
		row{"full backup: time", t(full), t(dump) + " (pg_dump -Fc)", opt(haveRestic, t(restic1)+" + dump "+t(plainDump)), opt(haveKopia, t(kopia1)+" + dump "+t(plainDump))},
		row{"full backup: stored", b(full), b(dump), opt(haveRestic, b(restic1)), opt(haveKopia, b(kopia1))},
		row{"no-change backup: time", fmt.Sprintf("%s (%.2fx of full)", t(noChange), noChange.wall.Seconds()/full.wall.Seconds()), t(dump) + " (every dump is full)", na, na},
		row{"no-change backup: stored", b(noChange), b(dump), na, na},
		row{"+2% backup: time", t(growth), t(dump2), opt(haveRestic, t(restic2)), opt(haveKopia, t(kopia2))},
		row{"+2% backup: stored", b(growth), b(dump2) + " (a whole dump)", opt(haveRestic, b(restic2)), opt(haveKopia, b(kopia2))},
		row{"restore in place, undoing the +2% (one transaction, undo snapshot first)", t(inPlace), t(pgRest) + " (pg_restore into an empty database)", na, na},
		row{"restore as a clone into an empty workspace (--to-workspace)", t(clone), t(pgRest), na, na},
		row{"peak RSS", kb(max(full.rssKB, noChange.rssKB, growth.rssKB, inPlace.rssKB, clone.rssKB)), kb(max(dump.rssKB, pgRest.rssKB)),
			opt(haveRestic, kb(max(restic1.rssKB, restic2.rssKB))), opt(haveKopia, kb(max(kopia1.rssKB, kopia2.rssKB)))},
	)
	fmt.Printf("\n| LightRAG on PostgreSQL, workspace of %s | graphkeep | pg_dump / pg_restore | restic on a plain dump | kopia on a plain dump |\n|---|---|---|---|---|\n", mb(size))
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s | %s |\n", r.name, r.gk, r.pg, r.restic, r.kopia)
	}
}

func runIn(env []string, bin string, args ...string) measurement {
	t := &tool{env: env}
	return t.run(bin, args...)
}

func stored(repoDir string, work func() measurement) measurement {
	before := dirSize(repoDir)
	m := work()
	m.stored = dirSize(repoDir) - before
	return m
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func fileSize(p string) int64 {
	info, err := os.Stat(p)
	must(err)
	return info.Size()
}

func kb(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/1024) }

func withoutPassword(raw string) string {
	at := strings.Index(raw, "@")
	colon := strings.Index(raw[len("postgres://"):], ":")
	if at < 0 || colon < 0 {
		return raw
	}
	return raw[:len("postgres://")+colon] + raw[at:]
}

func sql(ctx context.Context, url, stmt string, args ...any) {
	conn, err := pgx.Connect(ctx, url)
	must(err)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt, args...); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", stmt, err)
		os.Exit(1)
	}
}

func queryInt(ctx context.Context, url, stmt string, args ...any) int64 {
	conn, err := pgx.Connect(ctx, url)
	must(err)
	defer conn.Close(ctx)
	var n int64
	must(conn.QueryRow(ctx, stmt, args...).Scan(&n))
	return n
}

func serverVersion(ctx context.Context, url string) string {
	conn, err := pgx.Connect(ctx, url)
	must(err)
	defer conn.Close(ctx)
	var v string
	must(conn.QueryRow(ctx, "SHOW server_version").Scan(&v))
	return v
}

func tableNames(ctx context.Context, url string) []string {
	conn, err := pgx.Connect(ctx, url)
	must(err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'lightrag%'")
	must(err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	must(err)
	return names
}

// workspaceRows counts ws's rows over LightRAG's tables.
func workspaceRows(ctx context.Context, url, ws string) int64 {
	var n int64
	for _, t := range tableNames(ctx, url) {
		n += queryInt(ctx, url, "SELECT count(*) FROM "+pgx.Identifier{t}.Sanitize()+" WHERE workspace = $1", ws)
	}
	return n
}

// workspaceBytes is the size of ws's rows as stored (compressed, TOASTed
// values included).
func workspaceBytes(ctx context.Context, url string, schema pgtest.Schema, ws string) int64 {
	var total int64
	for _, t := range tableNames(ctx, url) {
		total += queryInt(ctx, url, "SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM "+pgx.Identifier{t}.Sanitize()+" t WHERE workspace = $1", ws)
	}
	return total
}

// populate writes a workspace of about size bytes, shaped as LightRAG
// writes one (documents of ten chunks, entities and relations with their
// vectors, chunk lists and graph rows), consistent at rest.
func populate(ctx context.Context, url string, s pgtest.Schema, ws string, size int64) {
	vec := int64(s.Dim)*4 + 600 // a vector row with its text
	units := size / (vec * 5 / 2)
	chunks, entities := max(units*3/10, 10), max(units*11/10, 10)
	relations, docs := entities*6/10, max(chunks/10, 1)
	vdbChunks, vdbEntity, vdbRelation := s.VectorTables()
	vector := fmt.Sprintf("(SELECT array_agg(random()::real) FROM generate_series(1, %d) WHERE g > 0)::%s", s.Dim, s.Vector)
	for _, stmt := range []string{
		`INSERT INTO lightrag_doc_full (workspace, id, doc_name, content) SELECT $1, 'doc-' || g, 'doc-' || g || '.txt', repeat(md5(g::text), 40) FROM generate_series(1, $2) g`,
		`INSERT INTO lightrag_doc_status (workspace, id, status, content_summary, content_length, chunks_count, file_path) SELECT $1, 'doc-' || g, 'processed', left(repeat(md5(g::text), 3), 100), 1280, 10, 'doc-' || g || '.txt' FROM generate_series(1, $2) g`,
		`INSERT INTO lightrag_full_entities (workspace, id, entity_names, count) SELECT $1, 'doc-' || g, '["e"]', 1 FROM generate_series(1, $2) g`,
		`INSERT INTO lightrag_full_relations (workspace, id, relation_pairs, count) SELECT $1, 'doc-' || g, '[["a","b"]]', 1 FROM generate_series(1, $2) g`,
	} {
		sql(ctx, url, stmt, ws, docs)
	}
	for _, stmt := range []string{
		`INSERT INTO lightrag_doc_chunks (workspace, id, full_doc_id, chunk_order_index, tokens, content, file_path) SELECT $1, 'chunk-' || g, 'doc-' || (g / 10 + 1), g % 10, 300, repeat(md5(g::text || 'c'), 36), 'doc.txt' FROM generate_series(1, $2) g`,
		`INSERT INTO ` + vdbChunks + ` (workspace, id, full_doc_id, chunk_order_index, tokens, content, content_vector, file_path) SELECT $1, 'chunk-' || g, 'doc-' || (g / 10 + 1), g % 10, 300, repeat(md5(g::text || 'c'), 36), ` + vector + `, 'doc.txt' FROM generate_series(1, $2) g`,
		`INSERT INTO lightrag_llm_cache (workspace, id, original_prompt, return_value, chunk_id, cache_type) SELECT $1, 'cache-' || g, repeat(md5(g::text || 'p'), 20), repeat(md5(g::text || 'r'), 20), 'chunk-' || g, 'extract' FROM generate_series(1, $2) g`,
	} {
		sql(ctx, url, stmt, ws, chunks)
	}
	for _, stmt := range []string{
		`INSERT INTO lightrag_graph_nodes (workspace, id, properties) SELECT $1, 'Entity ' || g, jsonb_build_object('entity_id', 'Entity ' || g, 'description', repeat(md5(g::text || 'n'), 6)) FROM generate_series(1, $2) g`,
		`INSERT INTO ` + vdbEntity + ` (workspace, id, entity_name, content, content_vector, chunk_ids, file_path) SELECT $1, 'ent-' || g, 'Entity ' || g, repeat(md5(g::text || 'e'), 6), ` + vector + `, ARRAY['chunk-' || g], 'doc.txt' FROM generate_series(1, $2) g`,
		`INSERT INTO lightrag_entity_chunks (workspace, id, chunk_ids, count) SELECT $1, 'Entity ' || g, jsonb_build_array('chunk-' || g), 1 FROM generate_series(1, $2) g`,
	} {
		sql(ctx, url, stmt, ws, entities)
	}
	pair := `least('Entity ' || g, 'Entity ' || (g + 1)), greatest('Entity ' || g, 'Entity ' || (g + 1))`
	for _, stmt := range []string{
		`INSERT INTO lightrag_graph_edges (workspace, src_id, tgt_id, properties) SELECT $1, ` + pair + `, jsonb_build_object('description', repeat(md5(g::text || 'r'), 6)) FROM generate_series(1, $2) g`,
		`INSERT INTO ` + vdbRelation + ` (workspace, id, source_id, target_id, content, content_vector, chunk_ids, file_path) SELECT $1, 'rel-' || g, ` + pair + `, repeat(md5(g::text || 'x'), 6), ` + vector + `, ARRAY['chunk-' || g], 'doc.txt' FROM generate_series(1, $2) g`,
		`INSERT INTO lightrag_relation_chunks (workspace, id, chunk_ids, count) SELECT $1, least('Entity ' || g, 'Entity ' || (g + 1)) || '<SEP>' || greatest('Entity ' || g, 'Entity ' || (g + 1)), jsonb_build_array('chunk-' || g), 1 FROM generate_series(1, $2) g`,
	} {
		sql(ctx, url, stmt, ws, relations)
	}
}

// grow changes percent of the workspace as re-ingesting documents does:
// entities get a new description and vector, and new chunks come.
func grow(ctx context.Context, url string, s pgtest.Schema, ws string, percent int64) {
	vdbChunks, vdbEntity, _ := s.VectorTables()
	vector := fmt.Sprintf("(SELECT array_agg(random()::real) FROM generate_series(1, %d) WHERE length(id) > 0)::%s", s.Dim, s.Vector)
	n := queryInt(ctx, url, "SELECT count(*) FROM "+vdbEntity+" WHERE workspace = $1", ws) * percent / 100
	sql(ctx, url, "UPDATE "+vdbEntity+" SET content = content || ' (updated)', content_vector = "+vector+
		" WHERE workspace = $1 AND id IN (SELECT id FROM "+vdbEntity+" WHERE workspace = $1 ORDER BY md5(id) LIMIT $2)", ws, n)
	c := queryInt(ctx, url, "SELECT count(*) FROM lightrag_doc_chunks WHERE workspace = $1", ws)
	add := c * percent / 100
	newVector := strings.Replace(vector, "length(id) > 0", "g > 0", 1)
	sql(ctx, url, `INSERT INTO lightrag_doc_chunks (workspace, id, full_doc_id, chunk_order_index, tokens, content, file_path) SELECT $1, 'chunk-new-' || g, 'doc-1', g % 10, 300, repeat(md5(g::text || 'new'), 36), 'doc.txt' FROM generate_series(1, $2) g`, ws, add)
	sql(ctx, url, `INSERT INTO `+vdbChunks+` (workspace, id, full_doc_id, chunk_order_index, tokens, content, content_vector, file_path) SELECT $1, 'chunk-new-' || g, 'doc-1', g % 10, 300, repeat(md5(g::text || 'new'), 36), `+newVector+`, 'doc.txt' FROM generate_series(1, $2) g`, ws, add)
}
