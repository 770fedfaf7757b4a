#!/usr/bin/env bash
# make demo: graphkeep end to end on local folder storage, with generated
# LightRAG-shaped graphs. Everything lives under $DEMO_DIR (default
# ./.graphkeep/demo) and is recreated on each run.
set -euo pipefail

GK=${GK:-bin/graphkeep}
DEMO_DIR=${DEMO_DIR:-.graphkeep/demo}
DEMO_SIZE=${DEMO_SIZE:-40000000}   # bytes per generated graph
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
export GRAPHKEEP_REPO="file://$DEMO_DIR/repo"
export GRAPHKEEP_GRAPHS_ROOT="$DEMO_DIR/graphs"
export GRAPHKEEP_CACHE_DIR="$DEMO_DIR/cache"
export GRAPHKEEP_PASSWORD="demo password"
export GRAPHKEEP_STATE_DIR="$DEMO_DIR/state"   # failovers this demo records stay in it

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Three generated LightRAG workspaces: alpha, beta, gamma"
"$GK" fixture generate "$GRAPHKEEP_GRAPHS_ROOT" --graphs alpha,beta,gamma --size "$DEMO_SIZE"
du -sh "$GRAPHKEEP_GRAPHS_ROOT"/* | sed 's|'"$DEMO_DIR"'/||'

step "2. An encrypted repository in a local folder"
"$GK" init

step "3. Back up every graph"
"$GK" backup --all

step "4. Back up again with nothing changed: nothing is stored"
"$GK" backup --all

step "5. LightRAG ingests 2% more documents into beta; back up beta"
"$GK" fixture grow "$GRAPHKEEP_GRAPHS_ROOT" beta --percent 2
"$GK" backup beta

step "6. Snapshots, with the LightRAG counts recorded in each"
"$GK" snapshots

step "7. Disaster: beta's vector store is torn. Restore beta's latest snapshot"
head -c 1000 "$GRAPHKEEP_GRAPHS_ROOT/beta/vdb_entities.json" > "$DEMO_DIR/torn" && mv "$DEMO_DIR/torn" "$GRAPHKEEP_GRAPHS_ROOT/beta/vdb_entities.json"
"$GK" restore beta latest
"$GK" previous remove beta --all   # the torn directory restore kept for undo

step "8. Verify every chunk of every snapshot (download, decrypt, hash)"
"$GK" verify --read-data

step "9. Keep the last snapshot of each graph, prune the rest"
"$GK" forget --keep-last 1 --prune | tail -2

step "10. Replicate to two more local folders (any provider works the same way)"
mkdir -p "$DEMO_DIR/replica-east" "$DEMO_DIR/replica-west"
"$GK" targets add east "file://$DEMO_DIR/replica-east"
"$GK" targets add west "file://$DEMO_DIR/replica-west"
"$GK" replicate
"$GK" replicate   # nothing left to copy

step "11. West is taken away; backups go on; west comes back and catches up"
mv "$DEMO_DIR/replica-west" "$DEMO_DIR/replica-west.away"
"$GK" fixture grow "$GRAPHKEEP_GRAPHS_ROOT" gamma --percent 2
"$GK" backup gamma
"$GK" replicate || echo "(replication to west failed, as it should while west is away; east is up to date)"
"$GK" targets list
mv "$DEMO_DIR/replica-west.away" "$DEMO_DIR/replica-west"
"$GK" replicate
"$GK" targets health
"$GK" replication status

step "12. Restore gamma from the west replica alone"
GRAPHKEEP_REPO="file://$DEMO_DIR/replica-west" "$GK" restore gamma latest --to "$DEMO_DIR/restored-from-west/gamma"
diff -r "$GRAPHKEEP_GRAPHS_ROOT/gamma" "$DEMO_DIR/restored-from-west/gamma" && echo "byte-identical to the live graph"

step "13. A recovery checkpoint: one consistent set of snapshots of every graph"
"$GK" checkpoint create --note "demo checkpoint"
"$GK" replicate
"$GK" checkpoint validate latest
"$GK" health

step "14. A second password for the on-call engineer; the replicas learn it too"
GRAPHKEEP_NEW_PASSWORD="on-call password" "$GK" key add
"$GK" replicate >/dev/null
GRAPHKEEP_PASSWORD="on-call password" "$GK" key list
GRAPHKEEP_REPO="file://$DEMO_DIR/replica-east" GRAPHKEEP_PASSWORD="on-call password" "$GK" snapshots alpha | tail -1

step "15. Disaster: the primary repository is destroyed"
rm -rf "$DEMO_DIR/repo"
"$GK" health || true
rm -rf "$GRAPHKEEP_GRAPHS_ROOT"/alpha "$GRAPHKEEP_GRAPHS_ROOT"/beta "$GRAPHKEEP_GRAPHS_ROOT"/gamma

step "16. Fail over to east and restore every graph of the checkpoint"
"$GK" failover --target east --dry-run
time "$GK" failover --target east --restore
"$GK" recovery status
"$GK" verify

step "Summary"
"$GK" stats
echo
echo "Monitoring: 'graphkeep monitoring rules' prints $("$GK" monitoring rules | grep -c 'alert:') Prometheus alerts; 'graphkeep serve' serves the dashboard at http://127.0.0.1:8080/"
echo
echo "The primary is now file://$DEMO_DIR/replica-east (password: \"$GRAPHKEEP_PASSWORD\")"
echo "Try: GRAPHKEEP_REPO=file://$DEMO_DIR/replica-east GRAPHKEEP_PASSWORD='demo password' $GK snapshots"
