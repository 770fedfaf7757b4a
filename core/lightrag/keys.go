package lightrag

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// KeySet is the set of names a store holds (entity names, relation pairs,
// chunk or document ids), as the cross-file invariants compare them. It is
// recorded in the manifest as a count and an order-independent fingerprint,
// so an entry reused from the parent snapshot can still be compared without
// reading its file again; the hashes themselves stay in memory, for naming
// how many names each side lacks.
type KeySet struct {
	Count int64 `json:"count"`
	// Sum is the sum (mod 2^64, hex) of the hashes of the distinct names.
	Sum string `json:"sum"`
	// hashes are the sorted distinct hashes; nil for a set decoded from a
	// manifest.
	hashes []uint64
}

// Equal reports whether two sets hold the same names (by fingerprint).
func (k *KeySet) Equal(o *KeySet) bool {
	return k.Count == o.Count && k.Sum == o.Sum
}

// Difference counts the names only in k and only in o; known is false when
// either set came from a manifest (fingerprint only).
func (k *KeySet) Difference(o *KeySet) (onlyK, onlyO int64, known bool) {
	if k.hashes == nil && k.Count > 0 || o.hashes == nil && o.Count > 0 {
		return 0, 0, false
	}
	i, j := 0, 0
	for i < len(k.hashes) && j < len(o.hashes) {
		switch a, b := k.hashes[i], o.hashes[j]; {
		case a == b:
			i++
			j++
		case a < b:
			onlyK++
			i++
		default:
			onlyO++
			j++
		}
	}
	onlyK += int64(len(k.hashes) - i)
	onlyO += int64(len(o.hashes) - j)
	return onlyK, onlyO, true
}

// keyCollector gathers the hashes of one file's names.
type keyCollector struct {
	hashes []uint64
}

func (c *keyCollector) add(name []byte) { c.hashes = append(c.hashes, hashName(name)) }

// addPair adds an unordered pair: A-B and B-A are the same relation.
func (c *keyCollector) addPair(a, b []byte) { c.hashes = append(c.hashes, hashPair(a, b)) }

// addSepPair adds a relation key written "A<SEP>B".
func (c *keyCollector) addSepPair(key []byte) {
	a, b, ok := strings.Cut(string(key), sep)
	if !ok {
		c.add(key) // not a pair: count it, so the sets disagree
		return
	}
	c.addPair([]byte(a), []byte(b))
}

const sep = "<SEP>"

// set returns the collected names as a KeySet; the collector is emptied.
// The hashes are sorted where they were gathered and copied only when
// duplicates or growth left much of the array unused.
func (c *keyCollector) set() *KeySet {
	h := c.hashes
	c.hashes = nil
	slices.Sort(h)
	h = slices.Compact(h)
	if cap(h)-len(h) > len(h)/4 {
		h = slices.Clone(h)
	}
	var sum uint64
	for _, x := range h {
		sum += x
	}
	return &KeySet{Count: int64(len(h)), Sum: strconv.FormatUint(sum, 16), hashes: h}
}

// hashName is FNV-1a 64 with a final mix, so sums of hashes spread well.
// It is part of the manifest format: changing it makes old fingerprints
// disagree with new ones.
func hashName(b []byte) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime
	}
	return mix(h)
}

func hashPair(a, b []byte) uint64 {
	if string(a) > string(b) {
		a, b = b, a
	}
	return mix(hashName(a)*31 ^ hashName(b))
}

// mix is splitmix64's finaliser.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// unescapeJSON decodes the body of a JSON string (quotes excluded) that
// holds a backslash; bodies without one are used as they are.
func unescapeJSON(raw []byte) []byte {
	var s string
	if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) != nil {
		return raw
	}
	return []byte(s)
}

// unescapeXML expands the five named entities and numeric character
// references of an attribute value written by networkx.
func unescapeXML(raw []byte) []byte {
	if !slices.Contains(raw, '&') {
		return raw
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] != '&' {
			out = append(out, raw[i])
			continue
		}
		end := -1
		for j := i + 1; j < len(raw) && j < i+12; j++ {
			if raw[j] == ';' {
				end = j
				break
			}
		}
		if end < 0 {
			out = append(out, '&')
			continue
		}
		name := string(raw[i+1 : end])
		switch {
		case name == "amp":
			out = append(out, '&')
		case name == "lt":
			out = append(out, '<')
		case name == "gt":
			out = append(out, '>')
		case name == "quot":
			out = append(out, '"')
		case name == "apos":
			out = append(out, '\'')
		case strings.HasPrefix(name, "#x") || strings.HasPrefix(name, "#X"):
			n, err := strconv.ParseUint(name[2:], 16, 32)
			if err != nil {
				out = append(out, raw[i:end+1]...)
			} else {
				out = append(out, string(rune(n))...)
			}
		case strings.HasPrefix(name, "#"):
			n, err := strconv.ParseUint(name[1:], 10, 32)
			if err != nil {
				out = append(out, raw[i:end+1]...)
			} else {
				out = append(out, string(rune(n))...)
			}
		default:
			out = append(out, raw[i:end+1]...)
		}
		i = end
	}
	return out
}
