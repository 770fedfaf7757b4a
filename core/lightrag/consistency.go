package lightrag

// Invariant is one cross-file rule LightRAG's stores obey at rest, and what
// a snapshot found.
type Invariant struct {
	Name string `json:"name"`
	// Left and Right name the two sides (file and what is compared).
	Left       string `json:"left"`
	Right      string `json:"right"`
	LeftCount  int64  `json:"left_count"`
	RightCount int64  `json:"right_count"`
	// OnlyLeft and OnlyRight count the names one side has and the other
	// lacks; nil when unknown (a side reused from the parent snapshot
	// carries only its fingerprint).
	OnlyLeft  *int64 `json:"only_left,omitempty"`
	OnlyRight *int64 `json:"only_right,omitempty"`
	Holds     bool   `json:"holds"`
	// Unchecked says why the rule could not be checked (a side does not
	// parse); such a rule does not hold.
	Unchecked string `json:"unchecked,omitempty"`
}

// rule is an invariant to check: the names of two files.
type rule struct {
	name        string
	left, right side
}

type side struct {
	file  string
	pairs bool   // compare Pairs, not Keys
	what  string // how the side reads in a report
}

// The invariants of a LightRAG workspace at rest (LightRAG >= 1.4, default
// file storages): every entity is a graph node, a vector and an entry of
// the entity-chunks store; every relation an edge, a vector and an entry of
// the relation-chunks store; every text chunk has a vector; and every
// stored document is processed.
var rules = []rule{
	{"entities", side{GraphFile, false, "nodes"}, side{VDBEntitiesFile, false, "entity_name"}},
	{"entities", side{GraphFile, false, "nodes"}, side{EntityChunksFile, false, "keys"}},
	{"relations", side{GraphFile, true, "edges"}, side{VDBRelationsFile, true, "src_id/tgt_id pairs"}},
	{"relations", side{GraphFile, true, "edges"}, side{RelationChunksFile, true, "keys"}},
	{"chunks", side{TextChunksFile, false, "keys"}, side{VDBChunksFile, false, "__id__"}},
	{"documents", side{FullDocsFile, false, "keys"}, side{DocStatusFile, false, "processed documents"}},
}

// Check compares the names of a graph's stores (files keyed by path
// relative to the graph directory, as validation found them). A rule is
// checked when at least one of its files exists; a missing file counts as
// empty. It returns every checked rule.
func Check(files map[string]*FileStats) []Invariant {
	var out []Invariant
	for _, r := range rules {
		l, lok := files[r.left.file]
		rt, rok := files[r.right.file]
		if !lok && !rok {
			continue
		}
		iv := Invariant{Name: r.name, Left: r.left.file + " " + r.left.what, Right: r.right.file + " " + r.right.what}
		ls, lerr := r.left.set(l, lok)
		rs, rerr := r.right.set(rt, rok)
		switch {
		case lerr != "":
			iv.Unchecked = lerr
		case rerr != "":
			iv.Unchecked = rerr
		default:
			iv.LeftCount, iv.RightCount = ls.Count, rs.Count
			iv.Holds = ls.Equal(rs)
			if !iv.Holds {
				if onlyL, onlyR, known := ls.Difference(rs); known {
					iv.OnlyLeft, iv.OnlyRight = &onlyL, &onlyR
				}
			}
		}
		out = append(out, iv)
	}
	return out
}

// set returns the side's names: empty for a missing file; a problem when
// the file does not parse or carries no names (written by a graphkeep that
// did not record them).
func (s side) set(st *FileStats, exists bool) (*KeySet, string) {
	if !exists {
		return &KeySet{Sum: "0", hashes: []uint64{}}, ""
	}
	if st == nil {
		return nil, s.file + " was not validated"
	}
	if st.Problem != "" {
		return nil, s.file + " does not parse"
	}
	set := st.Keys
	if s.pairs {
		set = st.Pairs
	}
	if set == nil {
		return nil, s.file + " has no recorded names"
	}
	return set, ""
}
