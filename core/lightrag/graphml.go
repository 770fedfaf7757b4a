package lightrag

import (
	"encoding/xml"
	"fmt"
	"io"
)

// validateGraphML parses networkx GraphML: <key> declarations map ids to
// attr.name, nodes and edges are counted, and every edge must join declared
// nodes and every <data> must use a declared key.
func validateGraphML(r io.Reader) *FileStats {
	st := &FileStats{Kind: KindGraphML}
	dec := xml.NewDecoder(r)
	keys := map[string]string{} // key id -> attr.name
	nodes := map[string]struct{}{}
	type edge struct{ source, target string }
	var edges []edge
	sawRoot := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			st.Problem = fmt.Sprintf("GraphML does not parse: %v", err)
			return st
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch el.Name.Local {
		case "graphml":
			sawRoot = true
		case "key":
			keys[attr(el, "id")] = attr(el, "attr.name")
		case "node":
			id := attr(el, "id")
			if id == "" {
				st.Problem = "a node has no id"
				return st
			}
			nodes[id] = struct{}{}
		case "edge":
			edges = append(edges, edge{attr(el, "source"), attr(el, "target")})
		case "data":
			if _, ok := keys[attr(el, "key")]; !ok {
				st.Problem = fmt.Sprintf("data uses undeclared key %q", attr(el, "key"))
				return st
			}
		}
	}
	if !sawRoot {
		st.Problem = "not a GraphML document (no <graphml> element)"
		return st
	}
	for _, e := range edges {
		_, okS := nodes[e.source]
		_, okT := nodes[e.target]
		if !okS || !okT {
			st.Problem = fmt.Sprintf("edge %q -> %q names a node that does not exist", e.source, e.target)
			return st
		}
	}
	st.Nodes, st.Edges = int64(len(nodes)), int64(len(edges))
	return st
}

func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}
