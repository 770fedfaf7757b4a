package main

import (
	"errors"
	"fmt"

	"github.com/graphkeep/graphkeep/core/problem"
)

// errReported marks a failure already reported to the user (verify found
// damage): exit 1 without printing it again.
var errReported = errors.New("already reported")

// explain is err as the CLI says it: the message, then the remedy in
// flags and commands.
func explain(err error) string {
	remedy, object := problem.RemedyOf(err)
	if hint := remedyHint(remedy, object); hint != "" {
		return err.Error() + "\n(" + hint + ")"
	}
	return err.Error()
}

// remedyHint renders a neutral remedy as what to type.
func remedyHint(r problem.Remedy, object string) string {
	or := func(s, fallback string) string {
		if s == "" {
			return fallback
		}
		return s
	}
	switch r {
	case problem.GiveRepository:
		return "give --repo URL, set GRAPHKEEP_REPO, or set repo: in the config file"
	case problem.CreateRepository:
		return "check --repo / GRAPHKEEP_REPO; to create a new repository there, run 'graphkeep init'; if the primary was lost, 'graphkeep failover --target ID' promotes a replica"
	case problem.CreateLocation:
		return "create the folder or bucket, or add ?create=true to a file:// URL"
	case problem.CopyConfig:
		return "never 'graphkeep init' here: copy graphkeep.repo from a replica (any target of this repository holds the same one) into the repository, or make a replica the primary with 'graphkeep failover --target ID'"
	case problem.FailOver:
		return "make a healthy replica the primary with 'graphkeep failover --target ID'"
	case problem.Force:
		return "add --force to go ahead anyway"
	case problem.ForceOrNewDest:
		return "add --force to restore there anyway, or give --to a new directory"
	case problem.AllowOutsideLinks:
		return "look at the links first ('graphkeep verify' lists them); add --allow-outside-links to restore them anyway"
	case problem.AllowNotGood:
		return fmt.Sprintf("to restore such a snapshot anyway, name its id and add --allow-flagged; 'graphkeep snapshots %s' lists them", or(object, "GRAPH"))
	case problem.GivePassword:
		return "set GRAPHKEEP_PASSWORD, or use --password-file or --password-command"
	case problem.AddRetentionRule:
		return "give at least one --keep-* rule, or set retention: in the config file"
	case problem.ListSnapshots:
		return fmt.Sprintf("see 'graphkeep snapshots %s'", object)
	case problem.BackUp:
		return fmt.Sprintf("back it up: 'graphkeep backup %s'", or(object, "GRAPH"))
	case problem.ListCheckpoints:
		return "see 'graphkeep checkpoint list'"
	case problem.CreateCheckpoint:
		return "create one with 'graphkeep checkpoint create'"
	case problem.ValidateCheckpoint:
		return fmt.Sprintf("run 'graphkeep checkpoint validate %s'", or(object, "latest"))
	case problem.AddTarget:
		return "add one with 'graphkeep targets add ID URL'; 'graphkeep targets list' lists them"
	case problem.RemoveTarget:
		return fmt.Sprintf("remove it with 'graphkeep targets remove %s'", or(object, "ID"))
	case problem.Replicate:
		return fmt.Sprintf("a target is filled by replication, never by 'graphkeep init': 'graphkeep replicate --target %s' copies the repository there", or(object, "ID"))
	case problem.ReplicateOrForce:
		return fmt.Sprintf("run 'graphkeep replicate --target %s' first, or add --force", or(object, "ID"))
	case problem.SetGraphsRoot:
		return "give --graphs-root DIR (LightRAG's working_dir) or --graph ID=DIR"
	case problem.GiveTargetURL:
		return "give the target's URL: --target s3://bucket/prefix"
	case problem.Upgrade:
		return "use a graphkeep release that supports it"
	case problem.RemoveDamaged:
		return "such snapshots were not written by graphkeep as they are; after a look, forget them with 'graphkeep forget GRAPH SNAPSHOT'"
	case problem.RestoreFromReplica:
		return "restore the affected snapshots from a replica, or back up again"
	}
	return ""
}
